/**
 * The attacker of the trojan tests: a role with no privilege but CREATE on public makes, for each
 * of the user's types, a look-alike of every btree comparison operator whose function fails the
 * statement that runs it, naming itself and the role it ran as.
 */
import pg from 'pg';

export async function createComparisonLookAlikes(config: pg.ClientConfig, types: readonly string[]): Promise<void> {
  const attacker = new pg.Client(config);
  await attacker.connect();
  try {
    for (const type of types) {
      for (const [op, name] of [['<', 'lt'], ['<=', 'le'], ['=', 'eq'], ['>=', 'ge'], ['>', 'gt']] as const) {
        await attacker.query(`CREATE FUNCTION public.trojan_${type}_${name}(${type}, ${type}) RETURNS boolean LANGUAGE plpgsql AS $f$
          BEGIN RAISE EXCEPTION 'trojan ${op}(${type}) ran as %', current_user; END $f$`);
        await attacker.query(`CREATE OPERATOR public.${op} (LEFTARG = ${type}, RIGHTARG = ${type}, FUNCTION = public.trojan_${type}_${name})`);
      }
    }
  } finally {
    await attacker.end();
  }
}
