/**
 * Tests that could not run on this machine (a tool is missing) say so: once on stderr as the
 * file runs, and again after jest's summary (test/harness/summary-reporter.js reads test-output/not-run/).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const said = new Set<string>();

export function reportNotRun(topic: string, line: string): void {
  if (said.has(topic)) return;
  said.add(topic);
  process.stderr.write(`\n*** ${line}\n`);
  const dir = join('test-output', 'not-run');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${topic}.txt`), line + '\n');
}

/**
 * `describe` for tests that need a tool: runs when `missing` is undefined; otherwise skipped with
 * a loud line, or, when CI is set, one failing test saying what is missing.
 */
export function describeNeeding(topic: string, missing: string | undefined, name: string, body: () => void): void {
  if (missing === undefined) return describe(name, body);
  if (process.env.CI) {
    describe(name, () => test(`${topic} can run (required when CI is set)`, () => {
      throw new Error(missing);
    }));
    return;
  }
  reportNotRun(topic, missing);
  describe.skip(name, body);
}
