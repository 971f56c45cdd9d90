/**
 * REVIEW7 R131: table-sync, new-row and new-or-updated-row compare keys with the key type's own
 * operators, named with their schema (key-order.ts), and PostgreSQL lets a role name a schema only
 * with USAGE on it. A least-privilege role (SELECT on the table) with citext installed in a schema of
 * its own failed with a PERMISSION_DENIED whose fix spoke of table grants. The missing grant is now
 * named, before any batch is read; with it every row arrives.
 */
import { randomBytes } from 'node:crypto';
import { closeAll, type PgActionsError } from '../../connection/index.js';
import { pollTrigger, type TriggerState } from '../../triggers/index.js';
import { expectNoSecretIn } from '../harness/secrets.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const reader = `key_reader_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('key_type_schema', { beforeDrop: () => db.sql(`DROP OWNED BY ${reader}; DROP ROLE IF EXISTS ${reader}`).then(() => undefined) });
const readerConnection = () => ({ ...db.config, user: reader, password: 'reader-pass' });

beforeAll(async () => {
  await db.sql(`CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext; CREATE ROLE ${reader} LOGIN PASSWORD 'reader-pass';
    CREATE TABLE tags (k ext.citext COLLATE "C" PRIMARY KEY, created int NOT NULL DEFAULT 1);
    INSERT INTO tags (k) VALUES ('a1'), ('B2'), ('c3'), ('D4'), ('e5'), ('F6');
    GRANT SELECT ON tags TO ${reader}`);
}, 60_000);
afterAll(() => closeAll());

async function syncAll(): Promise<string[]> {
  let state: TriggerState | undefined;
  const keys: string[] = [];
  for (let polls = 0; polls < 10; polls++) {
    const result = await pollTrigger('table-sync', { connection: readerConnection(), config: { tables: ['tags'], batchSize: 2 }, state });
    state = result.state;
    if (result.events.length === 0) return keys;
    keys.push(...result.events.map((event) => String((event as unknown as { key: { k: string } }).key.k)));
  }
  throw new Error('still delivering');
}

test('without USAGE on the key type\'s schema: PERMISSION_DENIED naming the grant, for table-sync and new-row alike', async () => {
  for (const [trigger, config] of [['table-sync', { tables: ['tags'], batchSize: 2 }], ['new-row', { table: 'tags', column: 'k', from: 'beginning', batchSize: 2 }]] as const) {
    const error = await pollTrigger(trigger, { connection: readerConnection(), config }).then(
      () => undefined,
      (e: unknown) => e as PgActionsError,
    );
    expect(error?.code).toBe('PERMISSION_DENIED');
    expect(error?.message).toMatch(/"k" has the type ext\.citext.*no USAGE on schema "ext"/);
    expect(error?.fixes[0]).toBe('GRANT USAGE ON SCHEMA "ext" TO <role>;');
    expectNoSecretIn(error);
    expect(JSON.stringify(error)).not.toContain('reader-pass');
  }
}, 60_000);

test('with the grant: every row once, in citext\'s order', async () => {
  await db.sql(`GRANT USAGE ON SCHEMA ext TO ${reader}`);
  expect(await syncAll()).toEqual(['a1', 'B2', 'c3', 'D4', 'e5', 'F6']);
}, 60_000);
