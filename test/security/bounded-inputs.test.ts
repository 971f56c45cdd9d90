/**
 * Every input path is bounded: CLI @file and stdin stop at their cap with exit 2 naming it;
 * trigger data and step outputs deeper than 64 levels, or cyclic, are INVALID_INPUT naming the
 * field, found before any template is rendered or any connection made (never a stack overflow,
 * never a DATABASE_ERROR).
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgActionsError, preview, runAction } from '../../index.js';
import { runCli, startCli } from '../cli/cli.js';
import { expectNoSecretIn } from '../harness/secrets.js';

// Nothing listens on port 1: every case here must fail before connecting.
const NOWHERE = 'postgres://flow@127.0.0.1:1/app?sslmode=disable';
const connection = { host: '127.0.0.1', port: 1, user: 'flow', database: 'app', sslMode: 'disable' as const };

let files: string;
beforeAll(() => {
  files = mkdtempSync(join(tmpdir(), 'pg-actions-bounded-'));
});
afterAll(() => rmSync(files, { recursive: true, force: true }));

function nested(levels: number, leaf: unknown = 1, wrap: (inner: unknown) => unknown = (inner) => ({ a: inner })): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = wrap(value);
  return value;
}

describe('CLI @file and stdin', () => {
  test('--input @/dev/zero stops at the 16 MiB cap with exit 2', async () => {
    const started = Date.now();
    const result = await runCli(['run', 'query-rows', '--connection', NOWHERE, '--input', '@/dev/zero'], { timeoutMs: 30_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--input @/dev/zero is larger than 16 MiB');
    expect(Date.now() - started).toBeLessThan(25_000);
  });

  test('a --context file over the cap is exit 2 naming the flag', async () => {
    const big = join(files, 'big.json');
    writeFileSync(big, `{"trigger": "${'x'.repeat(16 * 1024 * 1024)}"}`);
    const result = await runCli(['run', 'query-rows', '--connection', NOWHERE, '--input', '{"query":"SELECT 1"}', '--context', `@${big}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--context @${big} is larger than 16 MiB`);
  });

  test('an endless stdin (--input @-) stops at the cap with exit 2', async () => {
    const { child, output } = startCli(['run', 'query-rows', '--connection', NOWHERE, '--input', '@-']);
    const closed = once(child, 'close');
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    let open = true;
    child.stdin!.on('error', () => (open = false));
    child.on('close', () => (open = false));
    const feed = async () => {
      while (open) {
        if (!child.stdin!.write(chunk)) await Promise.race([once(child.stdin!, 'drain'), closed]);
      }
    };
    void feed().catch(() => {}); // EPIPE once the CLI stops reading: expected
    const [code] = await closed;
    expect(code).toBe(2);
    expect(output().stderr).toContain('--input @- is larger than 16 MiB');
  });
});

describe('trigger data and step outputs', () => {
  const request = (context: object, query = 'SELECT {{trigger.a}}') => ({ connection, input: { query }, context });

  async function problemOf(run: Promise<unknown>): Promise<string> {
    const error = await run.then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(PgActionsError);
    expect((error as PgActionsError).code).toBe('INVALID_INPUT');
    expectNoSecretIn(error as PgActionsError);
    return (error as PgActionsError).problems!.join('\n');
  }

  test('3,000 levels of trigger data: INVALID_INPUT naming context.trigger, checked before rendering', async () => {
    const problem = await problemOf(preview('execute-query', request({ trigger: nested(3000) })));
    expect(problem).toMatch(/^context\.trigger\.a\.a\.a\.a….* nests more than 64 levels deep/);
    // Not even a template that never reads it may run with it.
    expect(await problemOf(preview('execute-query', request({ trigger: nested(3000) }, 'SELECT 1')))).toContain('context.trigger');
    expect(await problemOf(runAction('execute-query', request({ trigger: { a: nested(200_000, 1, (inner) => [inner]) } })))).toContain('context.trigger.a[0][0]');
  });

  test('a cyclic trigger or step output: INVALID_INPUT naming the field, never a TypeError or DATABASE_ERROR', async () => {
    const cyclic: Record<string, unknown> = { id: 1 };
    cyclic.self = cyclic;
    expect(await problemOf(runAction('execute-query', request({ trigger: { a: cyclic } })))).toBe(
      'context.trigger.a.self refers back to an enclosing value (a cycle); give plain JSON data',
    );
    expect(await problemOf(runAction('execute-query', request({ steps: { lookup: { rows: [cyclic] } } }, 'SELECT 1')))).toContain(
      'context.steps.lookup.rows[0].self refers back',
    );
  });

  test('64 levels, and the same object under two keys, are fine', async () => {
    const shared = { x: 1 };
    const result = await preview('execute-query', request({ trigger: { a: nested(63), b: shared, c: shared } }, 'SELECT {{trigger.b.x}}'));
    expect(result.values).toEqual([1]);
  });

  test('the CLI reports deep --context as exit 2 INVALID_INPUT', async () => {
    const deep = join(files, 'deep.json');
    writeFileSync(deep, JSON.stringify({ trigger: nested(3000) }));
    const result = await runCli(['run', 'execute-query', '--connection', NOWHERE, '--input', '{"query":"SELECT {{trigger.a}}"}', '--context', `@${deep}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('INVALID_INPUT');
    expect(result.stderr).toContain('nests more than 64 levels deep');
  });
});
