/**
 * `pg-actions watch <trigger>`: subscribes and prints each event as one JSON line on stdout. The
 * state file is written only after the line is flushed, so a crash at any moment repeats an event
 * rather than losing one; Ctrl+C closes the subscription cleanly.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { activateTrigger, findTrigger, subscribeTrigger, triggers, type TriggerState } from '../../index.js';
import { CONNECTION_OPTION, helpFixes, parseCommandLine, printUsage, requireOption, type Command } from '../command.js';
import { connectionFromOptions } from '../connection-argument.js';
import { SSH_USAGE } from '../ssh-arguments.js';
import { EXIT_OK, reportFailure, usageError } from '../failures.js';
import { readJsonArgument } from '../json-argument.js';

export const watchCommand: Command = {
  name: 'watch',
  runsUntilStopped: true,
  summary: 'Subscribe to a trigger and print its events as JSON lines until Ctrl+C',
  usage: `pg-actions watch <trigger> --connection <postgres-url | @config.json> --config <json | @file> [--state-file <path>] [--activate] [--json]

  <trigger>     ${triggers.map((trigger) => trigger.key).join(', ')}
  --config      the trigger's configuration as JSON, or @file.json (see docs/triggers/<trigger>.md)
  --state-file  where the position is kept between runs; written only after an event's line is flushed
  --activate    install what the trigger needs first (row-changes); idempotent
  --json        errors as one JSON object on stderr

${SSH_USAGE}

Example:
  pg-actions watch row-changes --connection postgres://app@localhost/app \\
    --config '{"tables": ["orders"]}' --state-file orders.state.json --activate`,

  async run(args, session) {
    const parsed = parseCommandLine('watch', args, { ...CONNECTION_OPTION, config: { type: 'string' }, 'state-file': { type: 'string' }, activate: { type: 'boolean' } }, ['trigger']);
    if (parsed.help) return printUsage(this.usage);
    const key = parsed.positionals[0]!;
    if (!findTrigger(key)) {
      throw usageError(`watch: unknown trigger "${key}"; it must be one of: ${triggers.map((trigger) => trigger.key).join(', ')}`, helpFixes('watch'));
    }
    const connection = connectionFromOptions('watch', parsed.values);
    const config = readJsonArgument(requireOption('watch', 'config', parsed.values.config), '--config');
    const stateFile = parsed.values['state-file'];
    const state = stateFile && existsSync(stateFile) ? readJsonArgument(`@${stateFile}`, '--state-file') : undefined;
    if (parsed.values.activate) await activateTrigger(key, { connection, config });
    const subscription = await subscribeTrigger(
      key,
      {
        connection,
        config,
        state,
        onState: stateFile ? (next) => saveState(stateFile, next) : undefined,
        onError: (error) => reportFailure(error, session.json),
      },
      (events) => writeLines(events.map((event) => JSON.stringify(event) + '\n').join('')),
    );
    await new Promise<void>((resolve) => {
      if (session.stopSignal.aborted) resolve();
      session.stopSignal.addEventListener('abort', () => resolve(), { once: true });
    });
    await subscription.close();
    return EXIT_OK;
  },
};

/** Resolves once the text is handed to the operating system (the ack of the events in it). */
function writeLines(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (error) => (error ? reject(error) : resolve())));
}

/** Write-then-rename: a crash leaves the old state or the new one, never half a file. */
function saveState(path: string, state: TriggerState): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(state) + '\n');
  renameSync(`${path}.tmp`, path);
}

