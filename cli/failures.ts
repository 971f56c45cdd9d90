/**
 * How the CLI fails: exit 2 when the invocation itself is wrong (usage, unreadable or invalid
 * input, a template that cannot render), exit 1 when the database or the runtime failed. stderr
 * carries the error as a person reads it, or with --json exactly one JSON object.
 */
import { isPgActionsError, PgActionsError } from '../index.js';
import { CLI_FAILURES, type CliFailureCase, type CliFailureKind } from './failure-catalogue.js';
import { redact } from './redact.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const USAGE_FIX = 'Run `pg-actions help` for the commands and their options.';

/**
 * A wrong invocation (unknown command or flag, missing argument, unreadable @file, bad JSON).
 * It is an INVALID_INPUT like any other invalid step input, so --json consumers see one code.
 */
export function usageError(problem: string, fixes: readonly string[] = [USAGE_FIX]): PgActionsError {
  return new PgActionsError('INVALID_INPUT', { message: problem, problems: [problem], fixes });
}

/**
 * A failure outside the library's catalogue (the embedded server cannot start, a port is taken).
 * Same JSON shape as PgActionsError so a script parses one format.
 */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
  constructor(
    readonly code: string,
    readonly title: string,
    message: string,
    readonly fixes: readonly string[] = [],
    /** A wrong invocation (exit 2), not a failure of the database or the runtime. */
    readonly usage = false,
  ) {
    super(message);
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, title: this.title, message: this.message, fixes: this.fixes };
  }
}

/** A CliFailure of a catalogued kind (failure-catalogue.ts); `firstFixes` come before the kind's own. */
export function cliFailure(kind: CliFailureKind, message: string, firstFixes: readonly string[] = []): CliFailure {
  const entry: CliFailureCase = CLI_FAILURES[kind];
  return new CliFailure(entry.code, entry.title, message, [...firstFixes, ...entry.fixes], entry.usage === true);
}

export function exitCodeFor(error: unknown): number {
  if (isPgActionsError(error) && (error.code === 'INVALID_INPUT' || error.code === 'TEMPLATE_ERROR')) return EXIT_USAGE;
  if (error instanceof CliFailure && error.usage) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** Writes the error to stderr: one JSON object with --json, otherwise title, message and numbered fixes. */
export function reportFailure(error: unknown, json: boolean): void {
  const known = isPgActionsError(error) || error instanceof CliFailure ? error : unexpected(error);
  const text = json ? JSON.stringify({ error: known.toJSON() }) : describe(known);
  process.stderr.write(redact(text) + '\n');
}

function unexpected(error: unknown): CliFailure {
  return cliFailure('unexpected', error instanceof Error ? error.message : String(error));
}

function describe(error: PgActionsError | CliFailure): string {
  const lines = [`Error: ${error.title} (${error.code})`, error.message];
  if (isPgActionsError(error)) {
    if (error.location) lines.push(`  at line ${error.location.line}, column ${error.location.column}`);
    if (error.detail) lines.push(`  detail: ${error.detail}`);
    if (error.hint) lines.push(`  hint: ${error.hint}`);
    // One problem is already the message; several are easier to read one per line.
    if (error.problems && error.problems.length > 1) lines.push(...error.problems.map((problem) => `  - ${problem}`));
  }
  if (error.fixes.length) {
    lines.push('', 'How to fix it:', ...error.fixes.map((fix, index) => `  ${index + 1}. ${fix}`));
  }
  return lines.join('\n');
}
