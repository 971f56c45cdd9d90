import { ERROR_CATALOGUE, type ErrorCode } from './catalogue.js';

/** Fields PostgreSQL may send with an error, kept as it sent them. */
export interface ServerErrorFields {
  sqlstate?: string;
  detail?: string;
  hint?: string;
  /** 1-based character offset of the error in the query text. */
  position?: number;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
  dataType?: string;
}

export interface PgActionsErrorInit extends ServerErrorFields {
  message?: string;
  /** Overrides the catalogue's fix list when a more specific list helps. */
  fixes?: readonly string[];
  /** Line and column (1-based) in the query text, for a syntax error. */
  location?: { line: number; column: number };
  /** Problems found in input, each naming its field path. */
  problems?: readonly string[];
  cause?: unknown;
  query?: string;
  parameters?: readonly unknown[];
}

/**
 * The one error a host ever sees from pg-actions. `code` is stable; the rest is for people.
 * The query text and parameter values are attached non-enumerably so that logging or
 * JSON-serialising the error never prints values.
 */
export class PgActionsError extends Error {
  override readonly name = 'PgActionsError';
  readonly code: ErrorCode;
  readonly title: string;
  readonly fixes: readonly string[];
  readonly sqlstate?: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: number;
  readonly location?: { line: number; column: number };
  readonly schema?: string;
  readonly table?: string;
  readonly column?: string;
  readonly constraint?: string;
  readonly dataType?: string;
  readonly problems?: readonly string[];
  /** Running the same step again can succeed (deadlock, serialization failure, lock or pool busy…). */
  readonly retryable: boolean;
  declare readonly query?: string;
  declare readonly parameters?: readonly unknown[];

  constructor(code: ErrorCode, init: PgActionsErrorInit = {}) {
    const entry = ERROR_CATALOGUE[code];
    super(init.message ?? entry.cause, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = code;
    this.title = entry.title;
    this.fixes = init.fixes ?? entry.fixes;
    this.retryable = 'retryable' in entry && entry.retryable === true;
    for (const key of FIELD_KEYS) {
      const value = init[key];
      if (value !== undefined) (this as Record<string, unknown>)[key] = value;
    }
    hide(this, 'query', init.query);
    hide(this, 'parameters', init.parameters);
  }

  /** The shape hosts serialise: never the query, parameters or cause. */
  toJSON(): Record<string, unknown> {
    const json: Record<string, unknown> = { code: this.code, title: this.title, message: this.message, fixes: this.fixes, retryable: this.retryable };
    for (const key of FIELD_KEYS) if (this[key] !== undefined) json[key] = this[key];
    return json;
  }
}

const FIELD_KEYS = [
  'sqlstate', 'detail', 'hint', 'position', 'location', 'schema', 'table', 'column', 'constraint', 'dataType', 'problems',
] as const;

function hide(target: object, key: string, value: unknown): void {
  if (value !== undefined) Object.defineProperty(target, key, { value, enumerable: false, writable: false, configurable: false });
}

export function isPgActionsError(value: unknown): value is PgActionsError {
  return value instanceof PgActionsError;
}
