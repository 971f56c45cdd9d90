/**
 * `pg-actions watch`: events as JSON lines, the state file written after the lines, Ctrl+C ends
 * cleanly (exit 0), and a second run with the same state file starts where the first stopped.
 */
import { readFileSync } from 'node:fs';
import { useTestDatabase } from '../harness/use-test-database.js';
import { waitFor } from '../triggers/helpers.js';
import { databaseUrl, runCli, startCli, useCliFolder } from './cli.js';

const db = useTestDatabase('watch');
const inFolder = useCliFolder('watch-');
beforeAll(async () => {
  await db.sql('CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL)');
});

function watch(stateFile: string) {
  return startCli(['watch', 'row-changes', '--connection', databaseUrl(db), '--config', '{"tables": ["orders"]}', '--state-file', stateFile, '--activate']);
}
const lines = (stdout: string) => stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { id: string; op: string; new: { customer: string } });
const exitOf = (child: ReturnType<typeof startCli>['child']) => new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

test('prints events as JSON lines, keeps the state file after them, stops cleanly, resumes from the state', async () => {
  const stateFile = inFolder('orders.state.json');
  const first = watch(stateFile);
  await waitFor(async () => (await db.sql("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%lease\\_until = pg\\_catalog.clock\\_timestamp()%'")).length > 0, 'watch to hold the lease (activation done)', 90_000).catch((error: Error) => {
    throw new Error(`${error.message}; stderr: ${first.output().stderr}; stdout: ${first.output().stdout}`);
  });
  await db.sql("INSERT INTO orders (customer) VALUES ('Ada'), ('Grace')");
  await waitFor(() => lines(first.output().stdout).length >= 2, 'two event lines', 60_000);
  expect(lines(first.output().stdout).map((e) => [e.op, e.new.customer])).toEqual([['INSERT', 'Ada'], ['INSERT', 'Grace']]);
  await waitFor(() => {
    try {
      return (JSON.parse(readFileSync(stateFile, 'utf8')) as { position: { after: number } }).position.after === 2;
    } catch {
      return false;
    }
  }, 'the state file', 60_000);
  const exited = exitOf(first.child);
  first.child.kill('SIGINT');
  expect(await exited).toBe(0);

  await db.sql("INSERT INTO orders (customer) VALUES ('Linus')"); // while nobody watches
  const second = watch(stateFile);
  await waitFor(() => lines(second.output().stdout).length >= 1, 'the change made while away', 90_000).catch((error: Error) => {
    throw new Error(`${error.message}; stderr: ${second.output().stderr}; state: ${readFileSync(stateFile, 'utf8')}`);
  });
  const exited2 = exitOf(second.child);
  second.child.kill('SIGINT');
  expect(await exited2).toBe(0);
  expect(lines(second.output().stdout).map((e) => e.new.customer)).toEqual(['Linus']);
}, 300_000);

test('an unknown trigger or a bad config is a usage error before any connection', async () => {
  const unknown = await runCli(['watch', 'nope', '--connection', 'postgres://x@127.0.0.1:1/x', '--config', '{}']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/unknown trigger "nope"/);
  const bad = await runCli(['watch', 'new-row', '--connection', 'postgres://x@127.0.0.1:1/x', '--config', '{"table": "t"}']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/config\.column is required/);
});
