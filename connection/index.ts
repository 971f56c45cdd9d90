/** The connection module's public face. It is the only part of pg-actions that imports `pg`. */
export { resolveConfig, parseConnectionString, type ConnectionConfig, type ResolvedConfig, type SslMode } from './config.js';
export { execute, configOf, type Statement, type StatementResult } from './execute.js';
export { testConnection, type ConnectionDiagnosis, type ConnectionTestResult, type TestConnectionOptions } from './test-connection.js';
export { closeAll } from './pools.js';
export * from './errors/index.js';
export { quoteIdentifier, quoteQualifiedName, splitQualifiedName } from './identifiers.js';
export { describeTable, forgetTables, type ColumnInfo, type TableInfo } from './catalog.js';
export { shortCache } from './short-cache.js';
export { listSchemas, listTables, listColumns, type SchemaEntry, type TableEntry, type TableKind, type ListTablesOptions } from './pickers.js';
export { PARSED_FORMATS } from './output-formats.js';
