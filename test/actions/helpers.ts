/**
 * Shared by the action behaviour tests: run a step through the public runAction and check its
 * output against the action's own output schema, or capture the PgActionsError it fails with.
 * (Not a test file: jest only collects *.test.ts.)
 */
import { findAction, runAction, type ActionKey, type StepRequest } from '../../actions/index.js';
import { PgActionsError } from '../../connection/index.js';
import { validatorFor } from '../../schemas/validate.js';
import { expectNoSecretIn } from '../harness/secrets.js';
import type { DeleteRowsOutput, ExecuteQueryOutput, InsertRowOutput, QueryRowsOutput, SchemaOverviewOutput, UpdateRowsOutput } from '../../schemas/types.gen.js';

export interface Outputs {
  'query-rows': QueryRowsOutput;
  'insert-row': InsertRowOutput;
  'update-rows': UpdateRowsOutput;
  'delete-rows': DeleteRowsOutput;
  'execute-query': ExecuteQueryOutput;
  'schema-overview': SchemaOverviewOutput;
}

/** Problems of `output` against the output schema of action `key` ([] when it conforms). */
export function outputProblems(key: ActionKey, output: unknown): string[] {
  const action = findAction(key);
  if (!action) throw new Error(`no action "${key}"`);
  return validatorFor(action.output)(output, 'output');
}

/** Runs one step; every output it returns is checked against the action's output schema. */
export async function run<K extends ActionKey>(key: K, request: StepRequest): Promise<Outputs[K]> {
  const output = await runAction(key, request);
  expect(outputProblems(key, output)).toEqual([]);
  return output as Outputs[K];
}

/**
 * The PgActionsError a step fails with. A step that succeeds (its output still schema-checked)
 * or throws anything but a PgActionsError fails the test.
 */
export async function failure(key: string, request: StepRequest): Promise<PgActionsError> {
  let output: unknown;
  try {
    output = await runAction(key, request);
  } catch (error) {
    if (!(error instanceof PgActionsError)) throw error;
    expectNoSecretIn(error);
    return error;
  }
  if (findAction(key)) expect(outputProblems(key as ActionKey, output)).toEqual([]);
  throw new Error(`expected "${key}" to fail, but it returned ${JSON.stringify(output)}`);
}

/** Double-quotes a name for the admin's own setup SQL (the code under test quotes its own). */
export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}
