/** `pg-actions run <action>`: one step, exactly as a flow runs it; the action's output JSON on stdout. */
import { actions, findAction, runAction, type StepContext } from '../../index.js';
import { CONNECTION_OPTION, helpFixes, parseCommandLine, printUsage, requireOption, type Command } from '../command.js';
import { connectionFromOptions } from '../connection-argument.js';
import { SSH_USAGE } from '../ssh-arguments.js';
import { EXIT_OK, usageError } from '../failures.js';
import { readJsonArgument } from '../json-argument.js';
import { liveProgress, printJson } from '../output.js';

export const runCommand: Command = {
  name: 'run',
  summary: 'Run one action (a flow step) and print its output JSON',
  usage: `pg-actions run <action> --connection <postgres-url | @config.json> --input <json | @file> [--context <json | @file>] [--json]

  <action>      ${actions.map((action) => action.key).join(', ')}
  --connection  postgres://user@host:5432/db?sslmode=require (PGPASSWORD is used when the URL has no
                password), or @file.json with a ConnectionConfig
  --input       the action's input as JSON, or @file.json (@- reads stdin); see \`pg-actions actions\`
  --context     {"trigger": {…}, "steps": {…}, "now": "…"} for {{ }} templates, JSON or @file.json
  --json        errors as one JSON object on stderr

${SSH_USAGE}

Example:
  pg-actions run query-rows --connection postgres://app@localhost/app \\
    --input '{"query": "SELECT id, email FROM users WHERE status = $1 LIMIT 10", "parameters": ["active"]}'`,

  async run(args) {
    const parsed = parseCommandLine('run', args, { ...CONNECTION_OPTION, input: { type: 'string', short: 'i' }, context: { type: 'string' } }, ['action']);
    if (parsed.help) return printUsage(this.usage);
    const key = parsed.positionals[0]!;
    // An unknown action is reported before anything else is read or any connection is made.
    if (!findAction(key)) {
      throw usageError(`run: unknown action "${key}"; it must be one of: ${actions.map((action) => action.key).join(', ')}`, [
        'Run `pg-actions actions` to see every action and its input fields.',
        ...helpFixes('run'),
      ]);
    }
    const connection = connectionFromOptions('run', parsed.values);
    const input = readJsonArgument(requireOption('run', 'input', parsed.values.input), '--input');
    const context = parsed.values.context === undefined ? undefined : readContext(parsed.values.context);
    const live = liveProgress();
    try {
      printJson(await runAction(key, {
        connection,
        input,
        context,
        onProgress: live && (({ rows, bytes }) => live.update(`receiving the result: ${rows.toLocaleString('en')} rows, ${(bytes / 1048576).toFixed(0)} MB`)),
      }));
    } finally {
      live?.done();
    }
    return EXIT_OK;
  },
};

function readContext(value: string): StepContext {
  const context = readJsonArgument(value, '--context');
  if (typeof context !== 'object' || context === null || Array.isArray(context)) {
    throw usageError('--context must be a JSON object: {"trigger": {…}, "steps": {…}, "now": "…"}', helpFixes('run'));
  }
  return context as StepContext;
}
