/**
 * The public way to run a step: find the action, validate connection and input (every problem
 * named, before anything touches the database), build the template context, run.
 */
import { configOf, PgActionsError, type ConnectionConfig, type Statement } from '../connection/index.js';
import { validatorFor } from '../schemas/validate.js';
import type { TemplateContext } from '../templating/index.js';
import { contextShapeProblem } from './context-shape.js';
import type { ActionDefinition } from './definition.js';
import { actions, findAction } from './registry.js';

export interface StepContext {
  /** The trigger's data: {{trigger.…}}. */
  trigger?: unknown;
  /** Earlier steps' outputs by step name: {{steps.<name>.…}}. */
  steps?: Record<string, unknown>;
  /** The step's start time, {{now}}; defaults to the moment runAction is called. */
  now?: Date | string;
}

export interface StepRequest {
  connection: ConnectionConfig;
  input: unknown;
  context?: StepContext;
  /** Called about every MiB of a large result as it arrives (a progress display). */
  onProgress?: Statement['onProgress'];
}

export async function runAction(key: string, request: StepRequest): Promise<unknown> {
  const { action, args } = validateStep(key, request);
  return action.run(args);
}

/** The exact SQL text and parameter values the step would send, without running it. */
export async function preview(key: string, request: StepRequest): Promise<Pick<Statement, 'text' | 'values'>> {
  const { action, args } = validateStep(key, request);
  const { text, values } = await action.prepare(args);
  return { text, values };
}

/** Checks an input against an action's schema; returns the problems, each naming its field. */
export function validateInput(key: string, input: unknown): string[] {
  const action = findAction(key);
  if (!action) return [unknownAction(key)];
  return validatorFor(action.input)(input, 'input');
}

function validateStep(key: string, request: StepRequest) {
  const action = findAction(key);
  if (!action) throw invalid([unknownAction(key)]);
  const problems: string[] = [];
  try {
    configOf(request.connection); // validated once per configuration object
  } catch (error) {
    if (!(error instanceof PgActionsError) || !error.problems) throw error;
    problems.push(...error.problems);
  }
  problems.push(...validatorFor(action.input)(request.input, 'input'));
  // Before any template reads them: a cycle or 3,000 levels must not overflow the stack later.
  for (const part of ['trigger', 'steps'] as const) {
    const problem = contextShapeProblem(request.context?.[part], `context.${part}`);
    if (problem) problems.push(problem);
  }
  if (problems.length) throw invalid(problems);
  const args = { connection: request.connection, input: request.input, context: templateContext(request.context), onProgress: request.onProgress };
  return { action: action as ActionDefinition, args };
}

function templateContext(context: StepContext | undefined): TemplateContext {
  const now = context?.now === undefined ? new Date() : new Date(context.now);
  if (Number.isNaN(now.getTime())) throw invalid(['context.now must be a date']);
  return { trigger: context?.trigger ?? {}, steps: context?.steps ?? {}, now };
}

function unknownAction(key: string): string {
  return `action "${key}" does not exist; it must be one of: ${actions.map((a) => a.key).join(', ')}`;
}

function invalid(problems: string[]): PgActionsError {
  return new PgActionsError('INVALID_INPUT', { message: problems.join('; '), problems });
}
