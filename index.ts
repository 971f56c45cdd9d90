/** pg-actions: the PostgreSQL step for workflow-automation products. */
export { actions, findAction, runAction, preview, validateInput, type ActionKey, type ActionDefinition, type StepContext, type StepRequest } from './actions/index.js';
export {
  testConnection, closeAll, describeTable, PgActionsError, isPgActionsError, ERROR_CODES, ERROR_CATALOGUE,
  type ConnectionConfig, type ConnectionDiagnosis, type ConnectionTestResult, type ErrorCode, type ColumnInfo, type TableInfo,
} from './connection/index.js';
export { listSchemas, listTables, listColumns, type SchemaEntry, type TableEntry, type TableKind, type ListTablesOptions } from './connection/index.js';
export type { TemplateContext } from './templating/index.js';
export type * from './schemas/types.gen.js';
export {
  triggers, findTrigger, listActivations, removeActivation, handoverState, type Activation, pollTrigger, subscribeTrigger, activateTrigger, deactivateTrigger, sampleEvents,
  type TriggerKey, type TriggerDefinition, type TriggerEvent, type TriggerState, type TriggerRequest, type SubscribeRequest,
  type TriggerSubscription, type EventHandler, type SampleResult,
} from './triggers/index.js';
export { diagnoseReplication, type ReplicationDiagnosis, type ReplicationCheck, type ReplicationCheckCode, type DiagnoseOptions } from './triggers/index.js';
