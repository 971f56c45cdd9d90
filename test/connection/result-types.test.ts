/**
 * Type OIDs above 2^31 (a cluster that has made two billion objects keeps counting; pg_upgrade
 * keeps them) must be resolved under their own number: read as a signed int they wrapped
 * negative, and every reader then missed its parser (CDC gave `paid: "f"` again, REVIEW5 R106).
 * The resolution SQL runs on the real server: an OID that names no type still comes back as
 * itself (its own base), which is enough to see whether it keeps its number.
 */
import { execute } from '../../connection/index.js';
import { resolvedTypesOf, resolveTypes, type ResolvedType } from '../../connection/result-types.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('result_types');

test('an OID above 2^31 is resolved under its own number, never a wrapped negative one', async () => {
  const pool = {};
  const high = 3_000_000_010;
  const query = async (text: string, values: unknown[]) => (await execute(db.config, { text, values, readOnly: true })) as unknown as { rows: ResolvedType[] };
  await resolveTypes(pool, [high, 4_294_967_295], query);
  const known = resolvedTypesOf(pool);
  expect([...known.keys()].sort()).toEqual([high, 4_294_967_295]);
  // Resolved once: asked again, nothing is looked up (a wrapped key would be looked up every time).
  let asked = 0;
  await resolveTypes(pool, [high], async (text, values) => ((asked++), query(text, values)));
  expect(asked).toBe(0);
});

test('a domain over boolean resolves to boolean\'s parser (false, not "f")', async () => {
  await db.sql('CREATE DOMAIN flag_r106 AS boolean');
  const oid = (await db.sql<{ oid: string }>("SELECT 'flag_r106'::regtype::oid::text AS oid"))[0]!.oid;
  const pool = {};
  await resolveTypes(pool, [Number(oid)], async (text, values) => (await execute(db.config, { text, values, readOnly: true })) as unknown as { rows: ResolvedType[] });
  expect(resolvedTypesOf(pool).get(Number(oid))?.('f')).toBe(false);
});
