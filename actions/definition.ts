/**
 * The contract every action file fulfils: a declarative definition (key, name, description, JSON
 * Schemas, an example) plus how to turn validated input into one statement and its result into
 * the output. `defineAction` adds the generic `run`, so no action repeats the plumbing.
 */
import { execute, type Statement, type StatementResult } from '../connection/index.js';
import type { TemplateContext } from '../templating/index.js';

export interface StepArguments<Input> {
  /** Connection configuration (validated by runAction). */
  connection: unknown;
  /** Input validated against the action's input schema; templates not yet rendered. */
  input: Input;
  /** Trigger data, earlier steps' outputs and the step's start time. */
  context: TemplateContext;
  /** Told as a large result arrives. */
  onProgress?: Statement['onProgress'];
}

export interface ActionExample<Input, Output> {
  /** SQL that creates the tables and rows the example needs (for docs and the docs test). */
  setup: readonly string[];
  input: Input;
  context?: { trigger?: unknown; steps?: Record<string, unknown>; now?: string };
  output: Output;
}

export interface ActionSpec<Input, Output, Prepared extends Statement = Statement> {
  key: string;
  name: string;
  description: string;
  /** JSON Schema of the input (schemas/actions/<key>.input.schema.json). */
  input: object;
  /** JSON Schema of the output (schemas/actions/<key>.output.schema.json). */
  output: object;
  example: ActionExample<Input, Output>;
  /** The exact statement the step sends: templates rendered, values bound. */
  prepare(args: StepArguments<Input>): Prepared | Promise<Prepared>;
  /** Shapes the statement's result into the action's output. */
  shape(result: StatementResult, args: StepArguments<Input>, statement: Prepared): Output;
}

export interface ActionDefinition<Input = unknown, Output = unknown, Prepared extends Statement = Statement>
  extends ActionSpec<Input, Output, Prepared> {
  run(args: StepArguments<Input>): Promise<Output>;
}

export function defineAction<Input, Output, Prepared extends Statement = Statement>(
  spec: ActionSpec<Input, Output, Prepared>,
): ActionDefinition<Input, Output, Prepared> {
  return {
    ...spec,
    async run(args) {
      const statement = await spec.prepare(args);
      if (args.onProgress) statement.onProgress = args.onProgress;
      return spec.shape(await execute(args.connection, statement), args, statement);
    },
  };
}
