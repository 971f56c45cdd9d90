export { actions, findAction, type ActionKey } from './registry.js';
export { runAction, preview, validateInput, type StepContext, type StepRequest } from './run-action.js';
export { defineAction, type ActionDefinition, type ActionExample, type StepArguments } from './definition.js';
