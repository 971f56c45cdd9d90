/**
 * Every action's documented example (the one in docs/actions/<key>.md) runs against a real
 * server and produces exactly the documented output, which also satisfies the output schema.
 */
import { readFileSync } from 'node:fs';
import { actions, preview, runAction } from '../../actions/index.js';
import { validatorFor } from '../../schemas/validate.js';
import { useTestDatabase } from '../harness/use-test-database.js';

const db = useTestDatabase('examples');

describe.each(actions.map((action) => [action.key, action] as const))('%s', (key, action) => {
  test('the documented example produces the documented output', async () => {
    const schema = `ex_${key.replace(/-/g, '_')}`;
    await db.sql(`CREATE SCHEMA ${schema}`);
    const config = { ...db.config, applicationName: schema };
    // Each example's tables live in their own schema, found through the search_path.
    await db.sql(`ALTER ROLE CURRENT_USER IN DATABASE ${db.name} SET search_path = ${schema}, public`);
    await db.sql(`SET search_path = ${schema}, public`);
    for (const sql of action.example.setup) await db.sql(sql);
    const output = await runAction(key, { connection: config, input: action.example.input, context: action.example.context });
    expect(output).toEqual(action.example.output);
    expect(validatorFor(action.output)(output, 'output')).toEqual([]);
    // The SQL the docs show is what preview says the step sends.
    const sent = await preview(key, { connection: config, input: action.example.input, context: action.example.context });
    const doc = readFileSync(new URL(`../../docs/actions/${key}.md`, import.meta.url), 'utf8');
    expect(doc).toContain('```sql\n' + sent.text + '\n```');
    expect(doc).toContain(JSON.stringify(JSON.parse(JSON.stringify(sent.values)), null, 2));
  });
});
