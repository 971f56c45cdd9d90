/**
 * The shape every command file exports, and argument parsing with node:util parseArgs in strict
 * mode: an unknown flag or a stray argument is a usage error (exit 2), never silently ignored.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError } from './failures.js';
import { SSH_OPTIONS } from './ssh-arguments.js';

export interface CommandSession {
  /** --json was given: results and errors are JSON. */
  json: boolean;
  /** Aborted on SIGINT / SIGTERM; `serve` runs until then, other commands are interrupted. */
  stopSignal: AbortSignal;
  /** Registers a clean-up (close a server, stop the embedded database); run last-in first-out at exit. */
  onExit(cleanup: () => Promise<void>): void;
}

export interface Command {
  name: string;
  /** Runs until SIGINT / SIGTERM and then returns by itself (otherwise a signal interrupts it). */
  runsUntilStopped?: boolean;
  /** One line for `pg-actions help`. */
  summary: string;
  /** The full usage text for `pg-actions help <command>`. */
  usage: string;
  /** Returns the exit code; throws to fail (see failures.ts for the codes). */
  run(args: string[], session: CommandSession): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every command accepts. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** --connection and the --ssh-* flags of a tunnel to it (ssh-arguments.ts). */
export const CONNECTION_OPTION = { connection: { type: 'string', short: 'c' }, ...SSH_OPTIONS } as const satisfies Options;

/** The values parseArgs returns for an options table (every flag optional, none repeatable). */
type OptionValues<O extends Options> = { [K in keyof O]?: O[K] extends { type: 'string' } ? string : boolean };

export interface CommandLine<O extends Options> {
  values: OptionValues<O & typeof COMMON_OPTIONS>;
  positionals: string[];
  help: boolean;
}

/**
 * Parses a command's arguments; `positionals` names the positional arguments the command takes
 * (all required), so a missing or extra one is reported by name.
 */
export function parseCommandLine<const O extends Options>(command: string, args: string[], options: O, positionals: readonly string[] = []): CommandLine<O> {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs' own messages are clear ("Unknown option '--foo'"); add where to look.
    throw usageError(`${command}: ${error instanceof Error ? error.message : String(error)}`, helpFixes(command));
  }
  const values = parsed.values as OptionValues<O & typeof COMMON_OPTIONS>;
  if (parsed.values.help) return { values, positionals: parsed.positionals, help: true };
  const missing = positionals.slice(parsed.positionals.length);
  if (missing.length) throw usageError(`${command}: missing ${missing.map((name) => `<${name}>`).join(' ')}`, helpFixes(command));
  const extra = parsed.positionals.slice(positionals.length);
  if (extra.length) throw usageError(`${command}: unexpected argument ${JSON.stringify(extra[0])}`, helpFixes(command));
  return { values, positionals: parsed.positionals, help: false };
}

export function requireOption(command: string, name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw usageError(`${command}: --${name} is required`, helpFixes(command));
  return value;
}

export function helpFixes(command: string): string[] {
  return [`Run \`pg-actions help ${command}\` for its usage and an example.`];
}

/** `--help`: the usage on stdout, exit 0. */
export function printUsage(usage: string): number {
  process.stdout.write(usage + '\n');
  return 0;
}
