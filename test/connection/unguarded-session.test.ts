/**
 * With the session guard off (bench/run.ts switches it off to measure what it costs), what a step's
 * statement did to its session is known only from its command tag (execute.ts `SESSION_CHANGING`):
 * a SET, a LISTEN, a PREPARE… drops the session, so the next step never inherits it; other
 * statements keep it (no reconnect per step), an UNLISTEN included.
 */
import { execute, type ConnectionConfig } from '../../connection/index.js';
import { sessionGuard } from '../../connection/session-guard.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('unguarded');

beforeAll(() => {
  sessionGuard.enabled = false;
});
afterAll(() => {
  sessionGuard.enabled = true;
});

const own = (applicationName: string): ConnectionConfig => ({ ...db.config, applicationName });
const reading = async (config: ConnectionConfig) =>
  (await execute(config, { text: `SELECT pg_backend_pid() AS pid, current_setting('search_path') AS path, array(SELECT pg_listening_channels()) AS channels` })).rows[0]!;

test.each([
  ['SET', 'SET search_path TO pg_catalog'],
  ['LISTEN', 'LISTEN unguarded_channel'],
])('a %s step: the next step gets a fresh session', async (name, text) => {
  const config = own(`unguarded-${name.toLowerCase()}`);
  const before = await reading(config);
  await execute(config, { text });
  const after = await reading(config);
  expect(after.pid).not.toBe(before.pid);
  expect({ path: after.path, channels: after.channels }).toEqual({ path: '"$user", public', channels: [] });
}, 60_000);

test('a SELECT or an UNLISTEN step keeps its session', async () => {
  const config = own('unguarded-keep');
  const before = await reading(config);
  await execute(config, { text: 'SELECT 1' });
  await execute(config, { text: 'UNLISTEN *' });
  expect((await reading(config)).pid).toBe(before.pid);
}, 60_000);

test('a tag-checked write (Insert Rows) is committed: another session sees it', async () => {
  await db.sql('CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY)');
  const result = await execute(own('unguarded-insert'), { text: 'INSERT INTO notes VALUES ($1)', values: [7], expectCommands: ['INSERT'], actionName: 'Insert Rows' });
  expect(result.command).toBe('INSERT');
  expect(await db.sql('SELECT id FROM notes')).toEqual([{ id: 7 }]);
}, 60_000);
