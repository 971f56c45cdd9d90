/**
 * Runs a workflow the way a flow engine does: a trigger, then steps whose outputs later steps
 * read through {{steps.<name>.…}}. Every PostgreSQL step is shown with its input, the exact SQL
 * and parameters it sends (from `preview`) and its output or error.
 */
import { actions, isPgActionsError, preview, runAction, type ConnectionConfig, type StepContext } from '../../index.js';
import { printLine, progress } from '../output.js';
import { formatField } from './format.js';

export interface StepRecord {
  title: string;
  /** The action key, for PostgreSQL steps. */
  action?: string;
  trigger?: unknown;
  input?: unknown;
  sql?: string;
  parameters?: readonly unknown[];
  output?: unknown;
  error?: Record<string, unknown>;
}

export interface WorkflowRecord {
  name: string;
  steps: StepRecord[];
}

const INDENT = '     ';

export class Workflow {
  readonly record: WorkflowRecord;
  private readonly outputs: Record<string, unknown> = {};
  private trigger: unknown = {};
  /** {{now}}: the moment the run started, the same for every step, as in a flow run. */
  private readonly now = new Date();

  constructor(
    name: string,
    private readonly connection: ConnectionConfig,
    private readonly quiet: boolean,
  ) {
    this.record = { name, steps: [] };
    progress(`running workflow "${name}"`);
    this.print('', `━━ ${name} ━━`);
  }

  fireTrigger(title: string, data: unknown): void {
    this.trigger = data;
    this.add({ title, trigger: data }, [formatField('trigger', data, INDENT)]);
  }

  /**
   * A PostgreSQL step. Its output becomes {{steps.<name>}} for later steps. With expectFailure
   * the error is shown and returned (the guard demonstrations); otherwise it ends the demo.
   */
  async postgres(name: string, actionKey: string, input: unknown, options: { expectFailure?: boolean } = {}): Promise<unknown> {
    const title = `PostgreSQL: ${actions.find((action) => action.key === actionKey)?.name ?? actionKey}`;
    const request = { connection: this.connection, input, context: this.context() };
    const step: StepRecord = { title, action: actionKey, input };
    const lines = Object.entries(input as Record<string, unknown>).map(([field, value]) => formatField(`input.${field}`, value, INDENT));
    try {
      const statement = await preview(actionKey, request);
      step.sql = statement.text;
      step.parameters = statement.values ?? [];
      lines.push(formatField('SQL sent', statement.text, INDENT), formatField('parameters', step.parameters, INDENT));
      step.output = await runAction(actionKey, request);
      this.outputs[name] = step.output;
      lines.push(formatField('output', step.output, INDENT));
    } catch (error) {
      if (!isPgActionsError(error)) throw error;
      step.error = error.toJSON();
      lines.push(formatField('error', `${error.code} (${error.title}): ${error.message}`, INDENT));
      this.add(step, lines);
      if (options.expectFailure) return error;
      throw error;
    }
    this.add(step, lines);
    return step.output;
  }

  /** A step of another app (email, HTTP request), run by the demo itself. */
  async external<T>(name: string, title: string, run: () => Promise<{ input: unknown; output: T }>): Promise<T> {
    const { input, output } = await run();
    this.outputs[name] = output;
    this.add({ title, input, output }, [formatField('input', input, INDENT), formatField('output', output, INDENT)]);
    return output;
  }

  private context(): StepContext {
    return { trigger: this.trigger, steps: { ...this.outputs }, now: this.now };
  }

  private add(step: StepRecord, lines: string[][]): void {
    this.record.steps.push(step);
    this.print(`  ${this.record.steps.length}. ${step.title}`, ...lines.flat());
  }

  private print(...lines: string[]): void {
    if (!this.quiet) for (const line of lines) printLine(line);
  }
}
