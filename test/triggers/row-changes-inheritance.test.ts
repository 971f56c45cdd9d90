/**
 * row-changes on inheritance trees (REVIEW12 R186): inheritance clones no trigger, and an UPDATE or
 * DELETE through the parent changes a child's rows by firing the child's triggers only. Activation
 * puts the row-level capture on every descendant too, reporting under the nearest watched ancestor.
 * Also a partition listed together with its partitioned table (REVIEW12 R191).
 */
import { activateTrigger, deactivateTrigger, listActivations, removeActivation } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';
import { poll } from './helpers.js';

const db = useTestDatabase('rcinherit');

beforeEach(async () => {
  for (const activation of await listActivations(db.config)) await removeActivation(db.config, activation.fingerprint);
  await db.sql('DROP TABLE IF EXISTS ip, mp1, mp2 CASCADE');
}, 60_000);

const request = (config: object, state?: unknown) => ({ connection: db.config, config, state });

async function captureTriggers(): Promise<string[]> {
  const rows = await db.sql<{ t: string }>(
    `SELECT tgrelid::regclass::text || ' ' || tgname AS t FROM pg_trigger WHERE tgname ~ '^pg_actions_rc_' AND NOT tgisinternal ORDER BY 1`);
  return rows.map((r) => r.t.replace(/pg_actions_rc_[0-9a-f]{16}/, 'pg_actions_rc_F'));
}

test('watching an inheritance parent sees the changes of its descendants\' rows, also UPDATE and DELETE made through the parent', async () => {
  await db.sql('CREATE TABLE ip (id int PRIMARY KEY, v text)');
  await db.sql('CREATE TABLE ic (extra int) INHERITS (ip)');
  await db.sql('CREATE TABLE icc () INHERITS (ic)');
  await db.sql(`INSERT INTO ic VALUES (1, 'child', 0)`);
  const config = { tables: ['ip'] };
  await activateTrigger('row-changes', request(config));
  expect(await captureTriggers()).toEqual(['ic pg_actions_rc_F', 'icc pg_actions_rc_F', 'ip pg_actions_rc_F']);
  const start = await poll('row-changes', request(config));
  await db.sql(`UPDATE ip SET v = 'updated through parent'`);
  await db.sql(`INSERT INTO ip VALUES (2, 'parent')`);
  await db.sql(`INSERT INTO icc VALUES (3, 'grandchild', 9)`);
  await db.sql(`DELETE FROM ip WHERE id <> 2`);
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => [e.op, e.table, e.key, e.old, e.new])).toEqual([
    ['UPDATE', 'ip', { id: 1 }, { id: 1, v: 'child', extra: 0 }, { id: 1, v: 'updated through parent', extra: 0 }],
    ['INSERT', 'ip', { id: 2 }, null, { id: 2, v: 'parent' }],
    ['INSERT', 'ip', { id: 3 }, null, { id: 3, v: 'grandchild', extra: 9 }],
    ['DELETE', 'ip', { id: 1 }, { id: 1, v: 'updated through parent', extra: 0 }, null],
    ['DELETE', 'ip', { id: 3 }, { id: 3, v: 'grandchild', extra: 9 }, null],
  ]);
  await deactivateTrigger('row-changes', request(config));
  expect(await captureTriggers()).toEqual([]);
});

test('a descendant is reported under its nearest watched ancestor; of two parents at one distance, the first-listed one', async () => {
  await db.sql('CREATE TABLE ip (id int PRIMARY KEY, v text)');
  await db.sql('CREATE TABLE ic () INHERITS (ip)');
  await db.sql('CREATE TABLE icc () INHERITS (ic)');
  await db.sql('CREATE TABLE mp1 (id int PRIMARY KEY, v text)');
  await db.sql('CREATE TABLE mp2 (v text, id int PRIMARY KEY)');
  await db.sql('CREATE TABLE mc () INHERITS (mp2, mp1)');
  const config = { tables: ['mp1', 'ip', 'mp2', 'ic'] };
  await activateTrigger('row-changes', request(config));
  const start = await poll('row-changes', request(config));
  await db.sql(`INSERT INTO icc VALUES (1, 'a')`);
  await db.sql(`INSERT INTO ic VALUES (2, 'b')`);
  await db.sql(`INSERT INTO mc VALUES ('c', 3)`);
  const { events } = await poll('row-changes', request(config, start.state));
  expect(events.map((e) => [e.table, e.key])).toEqual([['ic', null], ['ic', null], ['mp2', { id: 3 }]]);
  await deactivateTrigger('row-changes', request(config));
  expect(await captureTriggers()).toEqual([]);
});

describe('a partition listed together with its partitioned table (REVIEW12 R191)', () => {
  beforeEach(async () => {
    await db.sql('DROP TABLE IF EXISTS pp CASCADE');
    await db.sql('CREATE TABLE pp (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)');
    await db.sql('CREATE TABLE pp1 PARTITION OF pp FOR VALUES FROM (0) TO (100) PARTITION BY RANGE (id)');
    await db.sql('CREATE TABLE pp11 PARTITION OF pp1 FOR VALUES FROM (0) TO (50)');
    await db.sql('CREATE TABLE pp2 PARTITION OF pp FOR VALUES FROM (100) TO (200)');
  }, 60_000);

  test.each([[['pp', 'pp11']], [['pp11', 'pp']]])('%j: activates (the partition keeps the trigger cloned from the partitioned table), each change once, under the nearest listed table', async (tables) => {
    const config = { tables };
    await activateTrigger('row-changes', request(config));
    expect(await captureTriggers()).toEqual(['pp pg_actions_rc_F', 'pp1 pg_actions_rc_F', 'pp11 pg_actions_rc_F', 'pp2 pg_actions_rc_F']);
    await activateTrigger('row-changes', request(config)); // again: idempotent
    const start = await poll('row-changes', request(config));
    await db.sql(`INSERT INTO pp VALUES (1, 'a'), (150, 'b')`);
    await db.sql(`UPDATE pp11 SET v = 'c'`);
    const { events } = await poll('row-changes', request(config, start.state));
    expect(events.map((e) => [e.op, e.table, e.key])).toEqual([['INSERT', 'pp11', { id: 1 }], ['INSERT', 'pp', { id: 150 }], ['UPDATE', 'pp11', { id: 1 }]]);
    await deactivateTrigger('row-changes', request(config));
    expect(await captureTriggers()).toEqual([]);
  });
});
