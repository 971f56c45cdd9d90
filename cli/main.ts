/**
 * The pg-actions binary: `pg-actions <command> …`. Dispatches to one file per command, turns
 * failures into exit codes (1 runtime/database, 2 usage/input) and friendly stderr, and shuts
 * down cleanly on SIGINT / SIGTERM / SIGHUP (servers closed, pools ended, embedded database stopped).
 */
import { closeAll } from '../index.js';
import type { Command, CommandSession } from './command.js';
import { actionsCommand } from './commands/actions.js';
import { checkReplicationCommand } from './commands/check-replication.js';
import { demoCommand } from './commands/demo.js';
import { runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';
import { testConnectionCommand } from './commands/test-connection.js';
import { watchCommand } from './commands/watch.js';
import { EXIT_OK, EXIT_USAGE, exitCodeFor, reportFailure, usageError } from './failures.js';
import { packageVersion } from './package-root.js';

const COMMANDS: readonly Command[] = [runCommand, testConnectionCommand, checkReplicationCommand, actionsCommand, watchCommand, demoCommand, serveCommand];

/** After clean-up, a process kept alive by something forgotten still ends (timer is unref'd). */
const EXIT_GRACE_MS = 3000;

// A reader that stops early (`pg-actions actions | head`) is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(EXIT_OK);
    throw error;
  });
}
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

function overview(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return [
    'pg-actions: the PostgreSQL step for workflow automation, from the command line.',
    '',
    'Usage: pg-actions <command> [options]',
    '',
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    'Run `pg-actions help <command>` (or `<command> --help`) for its options and an example.',
    'Exit codes: 0 success, 1 database or runtime error, 2 invalid usage or input.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  // Known before parsing, so even a parse error is reported in the format the caller asked for.
  const json = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : undefined).includes('--json');
  const cleanups: (() => Promise<void>)[] = [];
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(SIGNAL_EXIT_CODES[signal] ?? 1); // a second Ctrl+C: do not wait
    stop.abort(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  const session: CommandSession = { json, stopSignal: stop.signal, onExit: (cleanup) => void cleanups.push(cleanup) };
  try {
    const invocation = resolve(argv);
    if (typeof invocation === 'number') return invocation;
    const [command, args] = invocation;
    const running = command.run(args, session);
    if (command.runsUntilStopped) return await running;
    const interrupted = new Promise<number>((done) =>
      stop.signal.addEventListener('abort', () => done(SIGNAL_EXIT_CODES[stop.signal.reason as NodeJS.Signals] ?? 1), { once: true }),
    );
    return await Promise.race([running, interrupted]);
  } catch (error) {
    reportFailure(error, json);
    return exitCodeFor(error);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => reportFailure(error, json));
    await closeAll().catch(() => {});
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }
}

/** The command to run and its arguments, or the exit code of help / version output. */
function resolve(argv: string[]): [Command, string[]] | number {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(overview() + '\n');
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h') return printText(overview());
  if (name === '--version' || name === '-v') return printText(packageVersion());
  if (name === 'help') return printText(rest[0] === undefined ? overview() : findCommand(rest[0]).usage);
  return [findCommand(name), rest];
}

function findCommand(name: string): Command {
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    throw usageError(`unknown command "${name}"; commands: ${COMMANDS.map((candidate) => candidate.name).join(', ')}`, [
      'Run `pg-actions help` for the commands and their options.',
    ]);
  }
  return command;
}

function printText(text: string): number {
  process.stdout.write(text + '\n');
  return EXIT_OK;
}

process.exitCode = await main(process.argv.slice(2));
setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
