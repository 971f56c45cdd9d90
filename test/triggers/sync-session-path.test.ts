/**
 * table-sync reads under the session's own search_path (REVIEW6 R119, R123): a batch that replaced
 * it (pg_catalog and the key types' schemas, c5caa38) broke what PostgreSQL resolves by name while
 * the COPY runs: a row-level security policy's helper function naming a table without its schema
 * failed every poll (UNDEFINED_TABLE), and regclass/regtype/regproc values came out
 * schema-qualified where Query Rows gives them bare.
 */
import { execute } from '../../connection/index.js';
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('sync_session_path');
const ROLE = `sync_path_flow_${process.pid}`;
const PASSWORD = 'flow-pass-123';

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}';
    CREATE TABLE allowed (name text PRIMARY KEY); INSERT INTO allowed VALUES ('ada'), ('bob');
    CREATE FUNCTION public.visible(owner text) RETURNS boolean LANGUAGE sql STABLE AS 'SELECT EXISTS (SELECT 1 FROM allowed WHERE name = owner)';
    CREATE TABLE docs (id int PRIMARY KEY, owner text); INSERT INTO docs SELECT g, (ARRAY['ada','bob','eve'])[1 + g % 3] FROM generate_series(1, 9) g;
    ALTER TABLE docs ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON docs FOR SELECT USING (public.visible(owner));
    GRANT SELECT ON docs, allowed TO ${ROLE};
    CREATE TYPE mood AS ENUM ('ok'); CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
    CREATE TABLE refs (id int PRIMARY KEY, rel regclass, ty regtype, fn regproc);
    INSERT INTO refs VALUES (1, 'docs', 'mood', 'f'), (2, 'allowed', 'int4', 'visible'), (3, 'refs', 'mood[]', 'f')`);
}, 60_000);

afterAll(async () => {
  await db.sql(`DROP OWNED BY ${ROLE}; DROP ROLE ${ROLE}`).catch(() => undefined);
});

async function synced(connection: object, table: string): Promise<Record<string, unknown>[]> {
  let state: TriggerState | undefined;
  const rows: Record<string, unknown>[] = [];
  for (let polls = 0; polls < 20; polls++) {
    const result = await pollTrigger('table-sync', { connection, config: { tables: [table], batchSize: 2 }, state });
    state = result.state;
    if (result.events.length === 0) return rows;
    rows.push(...result.events.map((event) => event.new as Record<string, unknown>));
  }
  throw new Error(`${table}: still delivering after 20 polls`);
}

test('under a row-level security policy whose function names a table unqualified: every visible row, as the flow role', async () => {
  const flow = { ...db.config, user: ROLE, password: PASSWORD };
  const rows = await synced(flow, 'docs');
  const visible = await execute(flow, { text: 'SELECT id, owner FROM docs ORDER BY id' });
  expect(visible.rows.map((row) => row.id)).toEqual([1, 3, 4, 6, 7, 9]);
  expect(rows).toEqual(visible.rows);
}, 60_000);

test('regclass, regtype and regproc values equal what Query Rows gives', async () => {
  const rows = await synced(db.config, 'refs');
  const { rows: queried } = await execute(db.config, { text: 'SELECT * FROM refs ORDER BY id' });
  expect(queried[0]).toMatchObject({ rel: 'docs', ty: 'mood', fn: 'f' });
  expect(rows).toEqual(queried);
}, 60_000);
