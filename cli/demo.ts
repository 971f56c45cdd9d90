/**
 * `npm start` (until the playground lands): starts the embedded PostgreSQL (kept in
 * .cache/pg-actions-db, so the second start is fast), then shows the connection module doing a
 * flow step's work: test connection, bound parameters, the read-only guard, a timeout cancelled
 * on the server, the result cap, and friendly errors.
 */
import { fileURLToPath } from 'node:url';
import { closeAll, execute, testConnection, type ConnectionConfig, type PgActionsError, type Statement } from '../connection/index.js';
import { startEmbeddedDatabase } from './embedded-database.js';

const CACHE_DIR = fileURLToPath(new URL('../.cache/pg-actions-db', import.meta.url));

function show(title: string, value: unknown): void {
  console.log(`\n▶ ${title}\n${JSON.stringify(value, null, 2)}`);
}

async function step(config: ConnectionConfig, title: string, statement: Statement): Promise<void> {
  try {
    const { command, rowCount, rows } = await execute(config, statement);
    show(title, { sql: statement.text, parameters: statement.values ?? [], output: { command, rowCount, rows } });
  } catch (error) {
    const { code, title: heading, message, fixes } = error as PgActionsError;
    show(title, { sql: statement.text, error: { code, title: heading, message, fixes } });
  }
}

async function main(): Promise<void> {
  const db = await startEmbeddedDatabase({ dataDir: CACHE_DIR, onProgress: (line) => console.error(line) });
  const config: ConnectionConfig = { host: db.host, port: db.port, user: db.user, password: db.password, database: 'postgres', sslMode: 'prefer' };
  try {
    console.log(`Embedded PostgreSQL running at 127.0.0.1:${db.port} (data in .cache/pg-actions-db)`);
    show('Test connection', await testConnection(config));
    await execute(config, {
      text: `CREATE TABLE IF NOT EXISTS demo_users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL,
             status text NOT NULL DEFAULT 'active', created_at timestamptz NOT NULL DEFAULT now())`,
    });
    await execute(config, {
      text: `INSERT INTO demo_users (name, email) VALUES ($1, $2), ($3, $4) ON CONFLICT (email) DO NOTHING`,
      values: ['John Doe', 'john@example.com', "Ann O'Hara", 'ann@example.com'],
    });
    await step(config, 'Query rows with a bound parameter ($1 = active)', {
      text: 'SELECT id, name, email, created_at FROM demo_users WHERE status = $1 ORDER BY id LIMIT 10',
      values: ['active'],
      readOnly: true,
    });
    await step(config, 'A hostile value stays a value', { text: 'SELECT $1::text AS value', values: ["x'); DROP TABLE demo_users; --"] });
    await step(config, 'Read-only guard: a write inside a read-only step', { text: `DELETE FROM demo_users`, readOnly: true });
    await step(config, 'Timeout (500 ms) cancelled on the server', { text: 'SELECT pg_sleep(30)', timeoutMs: 500 });
    await step(config, 'Result cap (64 KB) enforced while rows stream in', {
      text: `SELECT repeat('x', 1000) FROM generate_series(1, 1000000)`,
      maxResultBytes: 64 * 1024,
    });
    await step(config, 'Duplicate value', { text: 'INSERT INTO demo_users (name, email) VALUES ($1, $2)', values: ['John', 'john@example.com'] });
    await step(config, 'Syntax error, with line and column', { text: 'SELECT id,\n       name\n  FORM demo_users' });
  } finally {
    await closeAll();
    await db.stop();
  }
}

await main();
