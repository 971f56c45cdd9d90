/**
 * REVIEW10 R168: row-changes' sampleEvents dropped every error of its reads, so the refusal of a
 * pgactions schema owned by a role the caller does not trust (PERMISSION_DENIED, naming the owner and
 * the fix, as pollTrigger says) became "Not activated yet: activate the trigger": the flow editor told
 * the user to activate what was activated. Only the real not-activated case is a warning now.
 */
import { randomBytes } from 'node:crypto';
import { activateTrigger, sampleEvents } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { grantCaptureRole } from '../security/capture-role-setup.js';
import { failureOf } from './helpers.js';

const role = `sampleown_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase('sampleowner', { beforeDrop: () => db.sql(`DROP SCHEMA IF EXISTS pgactions CASCADE; DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`).then(() => undefined) });
const config = { tables: ['orders'] };

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'own-pw'; GRANT CREATE ON DATABASE ${db.name} TO ${role}`);
  await grantCaptureRole(db, role);
  await db.sql(`CREATE TABLE orders (id serial PRIMARY KEY, note text); ALTER TABLE orders OWNER TO ${role}`);
});

test('not activated: the sample warns "Not activated yet"', async () => {
  const sample = await sampleEvents('row-changes', { connection: db.config, config });
  expect(sample.events).toEqual([]);
  expect(sample.warnings).toEqual([expect.stringMatching(/^Not activated yet/)]);
});

test("activated by another role, which owns pgactions: the sample refuses with PERMISSION_DENIED naming the owner, not \"Not activated yet\"", async () => {
  await activateTrigger('row-changes', { connection: { ...db.config, user: role, password: 'own-pw' }, config });
  await db.sql("INSERT INTO orders (note) VALUES ('x')");
  const error = await failureOf(sampleEvents('row-changes', { connection: db.config, config }));
  expect(error.code).toBe('PERMISSION_DENIED');
  expect(error.message).toContain(`owned by role "${role}"`);
  expect(error.fixes.join(' ')).toContain('ALTER SCHEMA pgactions OWNER TO');
  // Its owner samples the change.
  const own = await sampleEvents('row-changes', { connection: { ...db.config, user: role, password: 'own-pw' }, config });
  expect(own.warnings).toEqual([]);
  expect(own.events).toHaveLength(1);
}, 60_000);
