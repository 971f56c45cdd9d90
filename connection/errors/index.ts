export { ERROR_CATALOGUE, ERROR_CODES, type ErrorCode, type ErrorEntry } from './catalogue.js';
export { PgActionsError, isPgActionsError, type PgActionsErrorInit, type ServerErrorFields } from './error.js';
export { toPgActionsError, redact, lineAndColumn, type FailureContext } from './map.js';
