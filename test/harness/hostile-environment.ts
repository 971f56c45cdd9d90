/**
 * Run as a child process (node --import tsx) with whatever environment a test gives it
 * (PGPASSWORD, PGPASSFILE, HOME with a .pgpass, PGOPTIONS…): makes the calls named in argv[2]
 * through the library's public entry and prints one JSON line per call with what came back.
 * Setting those variables in the jest worker itself would leak into other test files.
 */
import { closeAll, execute, testConnection, type ConnectionConfig } from '../../connection/index.js';
import { startPlayground } from '../../playground/server.js';

export type Call =
  | { via: 'testConnection' | 'execute'; connection: ConnectionConfig }
  /** POST /api/test-connection with `connection` typed in the page, the playground started with `saved`. */
  | { via: 'playground'; saved?: ConnectionConfig; connection: ConnectionConfig | 'default' };

export interface Outcome {
  via: Call['via'];
  ok: boolean;
  code?: string;
  message?: string;
}

async function run(call: Call): Promise<Outcome> {
  if (call.via === 'playground') return viaPlayground(call);
  if (call.via === 'testConnection') {
    const result = await testConnection(call.connection);
    return result.ok ? { via: call.via, ok: true } : { via: call.via, ok: false, code: result.error.code, message: result.error.message };
  }
  try {
    await execute(call.connection, { text: 'SELECT 1' });
    return { via: call.via, ok: true };
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    return { via: call.via, ok: false, code, message };
  }
}

async function viaPlayground(call: Extract<Call, { via: 'playground' }>): Promise<Outcome> {
  const playground = await startPlayground(call.saved ? { connection: call.saved } : {});
  try {
    const token = new URL(playground.url).searchParams.get('token');
    const response = await fetch(new URL('/api/test-connection', playground.url), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ connection: call.connection }),
    });
    const body = (await response.json()) as { ok?: boolean; error?: { code: string; message: string } };
    return { via: call.via, ok: response.ok && body.ok === true, code: body.error?.code, message: body.error?.message };
  } finally {
    await playground.close();
  }
}

const calls = JSON.parse(process.argv[2] ?? '[]') as Call[];
for (const call of calls) console.log(JSON.stringify(await run(call)));
await closeAll();
