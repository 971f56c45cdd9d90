/** Generated files stay in step with their sources, and every error code is documented. */
import { readdirSync, readFileSync } from 'node:fs';
import { CLI_FAILURES } from '../cli/failure-catalogue.js';
import { ERROR_CATALOGUE, ERROR_CODES } from '../connection/errors/index.js';
import { DOCS_DIR, GENERATED_DOCS } from '../scripts/generate-docs.js';
import { GENERATED_FILE, generateTypes } from '../scripts/generate-types.js';

test('schemas/types.gen.ts matches the JSON Schemas (run `npm run generate`)', async () => {
  expect(readFileSync(GENERATED_FILE, 'utf8')).toBe(await generateTypes());
});

test.each(Object.keys(GENERATED_DOCS))('docs/%s matches its source (run `npm run generate`)', (file) => {
  expect(readFileSync(DOCS_DIR + file, 'utf8')).toBe(GENERATED_DOCS[file]!());
});

describe('docs/errors.md documents every error code', () => {
  const doc = readFileSync(DOCS_DIR + 'errors.md', 'utf8');
  test.each(ERROR_CODES)('%s has a section with its cause and every fix', (code) => {
    const section = doc.split(/^## /m).find((part) => part.startsWith(code + '\n'));
    expect(section).toBeDefined();
    expect(section).toContain(ERROR_CATALOGUE[code].cause);
    for (const fix of ERROR_CATALOGUE[code].fixes) expect(section).toContain(fix);
  });

  test.each(Object.entries(CLI_FAILURES))('the CLI failure %s has a section under its code with its cause and every fix', (_, entry) => {
    const section = doc.split(/^## /m).find((part) => part.startsWith(entry.code + '\n'));
    expect(section).toContain(`**${entry.title}.** ${entry.cause}`);
    for (const fix of entry.fixes) expect(section).toContain(fix);
  });

  test('every CLI failure is built from the catalogue (cliFailure), so none is missing from docs/errors.md', () => {
    const sources = (dir: string): string[] =>
      readdirSync(new URL(`../${dir}/`, import.meta.url), { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory() ? sources(`${dir}/${entry.name}`) : entry.name.endsWith('.ts') ? [`${dir}/${entry.name}`] : [],
      );
    const direct = ['cli', 'playground', 'scripts']
      .flatMap(sources)
      .filter((file) => file !== 'cli/failures.ts' && /new CliFailure\(/.test(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')));
    expect(direct).toEqual([]);
  });
});
