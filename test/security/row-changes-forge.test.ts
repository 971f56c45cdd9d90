/**
 * REVIEW9 R157: rc_F_put's guard once asked whether the backend had written the table (by anyone's
 * code, even rolled back, even in an earlier transaction), not whether the caller may: a role with
 * no privilege on orders forged 1000 INSERT events after calling the application's SECURITY DEFINER
 * place_order() once, and a DELETE after an ON DELETE CASCADE rolled back to a savepoint; a writer
 * forged from a transaction after its real write. Now nobody but the activator may call rc_F_put:
 * every attempt is refused, and exactly the real changes are delivered.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { activateTrigger, deactivateTrigger, pollTrigger } from '../../triggers/index.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const suffix = randomBytes(4).toString('hex');
const clerk = `rc_clerk_${suffix}`;
const writer = `rc_fwriter_${suffix}`;
const db = useTestDatabase('rc_forge', {
  beforeDrop: async () => {
    await db.sql(`DROP OWNED BY ${clerk}, ${writer} CASCADE`);
    await db.sql(`DROP ROLE IF EXISTS ${clerk}; DROP ROLE IF EXISTS ${writer}`);
  },
});
const config = { tables: ['orders'] };
const request = () => ({ connection: db.config, config });
let put = '';

async function session(user: string): Promise<pg.Client> {
  const client = new pg.Client({ ...db.config, ssl: false, user, password: 'forge-pass' } as pg.ClientConfig);
  await client.connect();
  return client;
}

/** The forger's own trigger, on a temporary table (TEMP is PUBLIC's): each row inserted into `go` puts `n` made-up events of `op`. */
const forgeSql = () => `CREATE TEMP TABLE go (op text, n int);
  CREATE FUNCTION pg_temp.forge() RETURNS trigger LANGUAGE plpgsql AS $f$
  BEGIN
    IF NEW.op = 'INSERT' THEN
      PERFORM ${put}('public.orders'::regclass, 'INSERT', (SELECT array_agg(jsonb_build_object('id', 100000 + g, 'customer', 1, 'item', 'tv', 'amount', 0)) FROM generate_series(1, NEW.n) g), NULL);
    ELSE
      PERFORM ${put}('public.orders'::regclass, 'DELETE', NULL, ARRAY[jsonb_build_object('id', 2, 'customer', 2, 'item', 'car', 'amount', 30000)]);
    END IF;
    RETURN NULL;
  END $f$;
  CREATE TRIGGER forge AFTER INSERT ON go FOR EACH ROW EXECUTE FUNCTION pg_temp.forge()`;
const DENIED = { code: '42501', message: expect.stringMatching(/permission denied for (schema pgactions|function rc_)/) };

beforeAll(async () => {
  await db.sql(`CREATE ROLE ${clerk} LOGIN PASSWORD 'forge-pass'; CREATE ROLE ${writer} LOGIN PASSWORD 'forge-pass';
    CREATE TABLE customers (id int PRIMARY KEY, name text);
    CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customers ON DELETE CASCADE, item text, amount numeric);
    INSERT INTO customers VALUES (1, 'clerk'), (2, 'someone else');
    INSERT INTO orders (customer, item, amount) VALUES (1, 'pen', 5), (2, 'car', 30000);
    CREATE FUNCTION place_order(p_item text) RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = public AS
      $$ INSERT INTO orders (customer, item, amount) VALUES (1, p_item, 5) RETURNING id $$;
    GRANT EXECUTE ON FUNCTION place_order(text) TO ${clerk};
    GRANT SELECT, DELETE ON customers TO ${clerk};
    GRANT INSERT ON orders TO ${writer}; GRANT USAGE ON SEQUENCE orders_id_seq TO ${writer}`);
  await activateTrigger('row-changes', request());
  const [row] = await db.sql<{ f: string }>(`SELECT 'pgactions.' || proname AS f FROM pg_proc WHERE pronamespace = 'pgactions'::regnamespace AND proname ~ '_put$'`);
  put = row!.f;
}, 60_000);
afterAll(async () => {
  await deactivateTrigger('row-changes', request()).catch(() => undefined);
});

test('a role with no privilege on the table cannot put events after writing it through a SECURITY DEFINER function, nor after a cascade rolled back to a savepoint', async () => {
  const { state } = await pollTrigger('row-changes', request());
  const c = await session(clerk);
  try {
    await c.query(forgeSql());
    await c.query('BEGIN');
    await c.query(`SELECT place_order('pen')`);
    await expect(c.query(`INSERT INTO go VALUES ('INSERT', 1000)`)).rejects.toMatchObject(DENIED);
    await c.query('ROLLBACK');
    await c.query(`BEGIN; SELECT place_order('pen')`);
    await c.query('COMMIT');
    await c.query('BEGIN; SAVEPOINT s; DELETE FROM customers WHERE id = 1; ROLLBACK TO SAVEPOINT s');
    await expect(c.query(`INSERT INTO go VALUES ('DELETE', 1)`)).rejects.toMatchObject(DENIED);
    await c.query('ROLLBACK');
  } finally {
    await c.end();
  }
  const { events } = await pollTrigger('row-changes', { ...request(), state });
  expect(events.map((event) => { const e = event as unknown as { op: string; new: { item: string } }; return [e.op, e.new.item]; })).toEqual([['INSERT', 'pen']]);
}, 60_000);

test('a writer cannot put events in a transaction after the one that wrote the table (same session, a second later)', async () => {
  const { state } = await pollTrigger('row-changes', request());
  const w = await session(writer);
  try {
    await w.query(forgeSql());
    await w.query(`INSERT INTO orders (customer, item, amount) VALUES (1, 'real', 1)`);
    await expect(w.query(`INSERT INTO go VALUES ('INSERT', 1)`)).rejects.toMatchObject(DENIED);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await expect(w.query(`INSERT INTO go VALUES ('INSERT', 1)`)).rejects.toMatchObject(DENIED);
  } finally {
    await w.end();
  }
  const { events } = await pollTrigger('row-changes', { ...request(), state });
  expect(events.map((event) => (event as unknown as { new: { item: string } }).new.item)).toEqual(['real']);
}, 60_000);
