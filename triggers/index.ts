export { triggers, findTrigger, type TriggerKey } from './registry.js';
export {
  pollTrigger, subscribeTrigger, activateTrigger, deactivateTrigger, sampleEvents,
  type TriggerRequest, type SubscribeRequest, type TriggerSubscription, type EventHandler,
} from './run-trigger.js';
export type { TriggerDefinition, TriggerEvent, SampleResult } from './definition.js';
export type { TriggerState } from './state.js';
export { diagnoseReplication, type ReplicationDiagnosis, type ReplicationCheck, type ReplicationCheckCode, type DiagnoseOptions } from '../connection/replication-readiness/diagnose.js';
export { listActivations, removeActivation, type Activation } from './activations.js';
export { handoverState } from './sync/handover.js';
