/**
 * `pg-actions serve` (and `npm start`): the playground, on the embedded PostgreSQL with the
 * sample tables unless --connection names a server. Runs until SIGINT / SIGTERM, then closes
 * the playground, the pools and the embedded server, and exits 0.
 */
import type { ConnectionConfig } from '../../index.js';
import { CONNECTION_OPTION, helpFixes, parseCommandLine, printUsage, type Command, type CommandSession } from '../command.js';
import { describeConnection, optionalConnection } from '../connection-argument.js';
import { SSH_USAGE } from '../ssh-arguments.js';
import { openLocalDatabase } from '../embedded-session.js';
import { cliFailure, EXIT_OK, usageError } from '../failures.js';
import { printLine, progress } from '../output.js';
import { ensureSampleSchema } from '../sample-data.js';
import { isLoopbackHost } from '../../playground/access-token.js';

export const serveCommand: Command = {
  name: 'serve',
  runsUntilStopped: true,
  summary: 'Start the playground (embedded PostgreSQL with sample data unless --connection)',
  usage: `pg-actions serve [--port <n>] [--host <h>] [--no-token] [--connection <postgres-url | @config.json>]

  Without --connection it starts the embedded PostgreSQL (data kept in .cache/pg-actions-db, so
  the second start is fast) and creates the sample tables (users, orders, sessions, logs,
  audit_logs) on first run. Stops cleanly on Ctrl+C / SIGTERM.

  It prints the playground's URL with a random access token (…/?token=…): open that URL; every
  API call must carry the token (the page keeps it in a cookie; scripts send Authorization:
  Bearer <token>). See docs/security.md.

  --port      port to listen on (0 picks a free one)
  --host      interface to listen on (default 127.0.0.1, loopback; any other needs the token)
  --no-token  no access token, on a loopback --host only (anyone on this machine can use it)

${SSH_USAGE}

Example:
  pg-actions serve --port 3000
  pg-actions serve --connection postgres://app@localhost/app --port 0`,

  async run(args, session) {
    const parsed = parseCommandLine('serve', args, {
      ...CONNECTION_OPTION, port: { type: 'string', short: 'p' }, host: { type: 'string' }, 'no-token': { type: 'boolean' },
    });
    if (parsed.help) return printUsage(this.usage);
    const port = parsed.values.port === undefined ? undefined : parsePort(parsed.values.port);
    const host = parsed.values.host;
    const noToken = parsed.values['no-token'] === true;
    if (noToken && host !== undefined && !isLoopbackHost(host)) {
      throw usageError(`serve: --no-token is only allowed on a loopback --host (127.0.0.1, ::1, localhost), not ${host}`, [
        'Drop --no-token and open the URL serve prints (it carries the access token).',
      ]);
    }
    const given = optionalConnection('serve', parsed.values);
    const { connection, description } = given ? givenDatabase(given) : await localDatabase(session);

    progress('starting the playground');
    const { startPlayground } = await import('../../playground/server.js');
    let playground;
    try {
      playground = await startPlayground({ connection, ...(noToken ? { token: false as const } : {}), ...(host === undefined ? {} : { host }), ...(port === undefined ? {} : { port }) });
    } catch (error) {
      throw listenFailure(error, host, port);
    }
    session.onExit(() => playground.close());
    printLine(`pg-actions playground: ${playground.url}\nDatabase: ${description}`);
    if (process.stdout.isTTY) printLine('Press Ctrl+C to stop.');
    await untilAborted(session.stopSignal);
    return EXIT_OK;
  },
};

function givenDatabase(connection: ConnectionConfig) {
  return { connection, description: describeConnection(connection) };
}

async function localDatabase(session: CommandSession) {
  const local = await openLocalDatabase();
  session.onExit(local.close);
  progress('creating the sample tables where missing');
  await ensureSampleSchema(local.connection);
  return { connection: local.connection, description: `${local.description}, sample tables in database postgres` };
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw usageError(`serve: --port must be a number from 0 to 65535, not ${JSON.stringify(text)}`, helpFixes('serve'));
  return port;
}

function listenFailure(error: unknown, host: string | undefined, port: number | undefined): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    const where = `${host ?? 'the default host'}:${port ?? 'the default port'}`;
    return cliFailure('listen', `${where}: ${code}`);
  }
  return error;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
