/**
 * REVIEW11 R169: the role row-changes serialises rows as was one for the whole cluster
 * (pgactions_capture). A tenant of another database that could act as it (it made the role, so
 * PostgreSQL 16+ gave it ADMIN OPTION on it) could take it over from its own database (GRANT it to
 * itself, RENAME it) or, connected to this one, DROP OWNED BY it: every captured write in every
 * database then failed until activated again. Now each database has its own role,
 * pgactions_capture_<database oid>, and activation refuses one that a role other than the
 * activators of that database may act as (a tenant of another database can make the role first:
 * role names are the cluster's, and database oids are public).
 */
import { randomBytes } from 'node:crypto';
import { activateTrigger, listActivations, pollTrigger } from '../../triggers/index.js';
import { asRole } from '../harness/as-role.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import type { TestDatabase } from '../harness/db.js';

const suffix = randomBytes(4).toString('hex');
const [tenant, squatter] = ['tenant', 'squatter'].map((role) => `rc_perdb_${role}_${suffix}`) as [string, string];
const password = 'perdb-pass';
const a = useTestDatabase('rc_perdb_a');
const b = useTestDatabase('rc_perdb_b');
// (The hooks run in this order: a and b are gone by now; the roles own nothing.)
const c = useTestDatabase('rc_perdb_c', { beforeDrop: () => c.sql(`DROP ROLE IF EXISTS ${tenant}, ${squatter}`).then(() => undefined) });
const request = (db: TestDatabase, table: string) => ({ connection: db.config, config: { tables: [table] } });

/** The role that owns the database's row serialiser (rc_<id>_json). */
async function serialiserOwner(db: TestDatabase): Promise<string> {
  const [row] = await db.sql<{ owner: string }>(`SELECT pg_get_userbyid(proowner) AS owner FROM pg_proc WHERE pronamespace = 'pgactions'::regnamespace AND proname ~ '^rc_[0-9a-f]{16}_json$'`);
  return row!.owner;
}

/** Runs `sql` as `user` on `db`: the SQLSTATE it failed with, or 'ok'. */
function attempt(db: TestDatabase, user: string, sql: string): Promise<string> {
  return asRole(db.config, user, password, (client) => client.query(sql).then(() => 'ok', (error: { code?: string }) => String(error.code)));
}

beforeAll(async () => {
  await a.sql(`CREATE ROLE ${tenant} LOGIN CREATEROLE PASSWORD '${password}'; CREATE ROLE ${squatter} LOGIN CREATEROLE PASSWORD '${password}'`);
  for (const db of [a, b, c]) await db.sql(`CREATE TABLE orders (id int PRIMARY KEY, note text)`);
}, 60_000);

test('a tenant that may act as the capture role of its own database cannot touch another database\'s capture', async () => {
  await activateTrigger('row-changes', request(a, 'orders'));
  await activateTrigger('row-changes', request(b, 'orders'));
  const [roleA, roleB] = [await serialiserOwner(a), await serialiserOwner(b)];
  // The tenant of b as if it had made b's capture role (PostgreSQL 16+ gives its creator ADMIN OPTION on it).
  await b.sql(`GRANT "${roleB}" TO ${tenant} WITH ADMIN OPTION`);
  const { state } = await pollTrigger('row-changes', request(a, 'orders'));
  expect({
    grant: await attempt(b, tenant, `GRANT "${roleA}" TO ${tenant}`),
    dropOwned: await attempt(a, tenant, `DROP OWNED BY "${roleA}"`),
    reassign: await attempt(a, tenant, `REASSIGN OWNED BY "${roleA}" TO ${tenant}`),
    rename: await attempt(b, tenant, `ALTER ROLE "${roleA}" RENAME TO rc_perdb_taken_${suffix}`),
  }).toEqual({ grant: '42501', dropOwned: '42501', reassign: '42501', rename: '42501' });
  expect(await serialiserOwner(a)).toBe(roleA);
  await a.sql(`INSERT INTO orders VALUES (1, 'still captured')`);
  const { events } = await pollTrigger('row-changes', { ...request(a, 'orders'), state });
  expect(events.map((event) => (event as unknown as { new: unknown }).new)).toEqual([{ id: 1, note: 'still captured' }]);
  // Within its own database the tenant may act as that database's role (documented): it can break only its own capture.
  expect(await attempt(b, tenant, `GRANT "${roleB}" TO ${tenant}`)).toBe('ok');
}, 120_000);

test('a role made beforehand by a tenant of another database (names are the cluster\'s) is refused, naming that tenant, until a superuser revokes it', async () => {
  const [{ oid }] = (await c.sql<{ oid: string }>(`SELECT oid::text AS oid FROM pg_database WHERE datname = current_database()`)) as [{ oid: string }];
  const role = `pgactions_capture_${oid}`;
  expect(await attempt(b, squatter, `CREATE ROLE ${role} NOLOGIN`)).toBe('ok');
  await expect(activateTrigger('row-changes', request(c, 'orders'))).rejects.toMatchObject({
    code: 'PERMISSION_DENIED',
    message: expect.stringContaining(`"${squatter}"`),
    fixes: [expect.stringContaining(`REVOKE ${role} FROM "${squatter}";`)],
  });
  await c.sql(`REVOKE ${role} FROM ${squatter}`);
  await activateTrigger('row-changes', request(c, 'orders'));
  expect(await serialiserOwner(c)).toBe(role);
}, 120_000);

test('when what the role owns is handed over or dropped (by this database\'s activator, say), writes fail closed: nothing written, nothing lost; listActivations says activate again', async () => {
  const role = await serialiserOwner(a);
  for (const [take, message] of [
    [`REASSIGN OWNED BY ${role} TO CURRENT_USER`, `pg-actions row-changes serialises rows only as the role ${role}, not as`],
    [`DROP OWNED BY ${role}`, /^function pgactions\.rc_[0-9a-f]{16}_json\(record\) does not exist$/],
  ] as const) {
    await activateTrigger('row-changes', request(a, 'orders'));
    const { state } = await pollTrigger('row-changes', request(a, 'orders'));
    await a.sql(take);
    await expect(a.sql(`INSERT INTO orders VALUES (2, 'not written')`)).rejects.toMatchObject({ message: typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message) });
    expect(await a.sql('SELECT id FROM orders WHERE id = 2')).toEqual([]);
    expect((await listActivations(a.config)).map(({ complete, outdated }) => ({ complete, outdated }))).toEqual([{ complete: true, outdated: true }]);
    expect((await pollTrigger('row-changes', { ...request(a, 'orders'), state })).events).toEqual([]);
  }
  await activateTrigger('row-changes', request(a, 'orders'));
  const { state } = await pollTrigger('row-changes', request(a, 'orders'));
  await a.sql(`INSERT INTO orders VALUES (2, 'captured again')`);
  expect((await pollTrigger('row-changes', { ...request(a, 'orders'), state })).events).toHaveLength(1);
}, 120_000);
