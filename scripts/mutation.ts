/**
 * `npm run test:mutation [-- <module> …]`: Stryker mutation testing of the safety-critical modules,
 * one module at a time, each against only the test files that exercise it (listed below), so a
 * run fits on a 2-core machine. One embedded PostgreSQL serves every run (PG_TEST_URL), instead
 * of jest's global setup starting one per mutant. Prints the per-module score table that
 * docs/testing.md keeps; each module's full report is in reports/mutation/<module>.json.
 * Not part of `npm test` or CI.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedDatabase } from '../cli/embedded-database.js';

/** Module → the tests that exercise it, most critical first. */
export const MUTATION_TARGETS: Record<string, string[]> = {
  // execute.test and faults.test also reach it end to end (1 GB cap, timeouts): too slow per mutant.
  'connection/cancel.ts': ['test/connection/cancel.test.ts'],
  'connection/deadline.ts': ['test/connection/deadline.test.ts', 'test/connection/execute.test.ts'],
  // statement-run.test drives StatementRun's plans directly (failedAt, probe, check, early answer, shape cache);
  // statement-edges.test the parameter limit, command tags, the caps and onProgress through execute(). execute.test
  // and edge-cases.test reach it end to end too, but their silent network (13 s) and deep JSON (5 s) run per mutant.
  // statement-bounds.test: the two survivors of the 2026-11-30 rerun of lines 1-261.
  'connection/statement.ts': ['test/connection/statement-run.test.ts', 'test/connection/statement-edges.test.ts', 'test/connection/result-gate.test.ts', 'test/connection/statement-bounds.test.ts'],
  // errors.test.ts, secrets.test.ts and server-going-away.test.ts start servers of their own: too slow
  // to repeat per mutant (the module-level tables' mutants run every listed test). The
  // messages, fields and redaction are pinned by error-mapping.test.ts, which starts none;
  // SQLSTATE_SOURCES (the "Produced by" lines of docs/errors.md) by generated.test.ts.
  // error-mapping-more.test: SSL_REQUIRED from a TLS-only peer, the pooler's messages from a real PgBouncer (4 short-lived processes).
  'connection/errors/map.ts': ['test/connection/error-mapping.test.ts', 'test/connection/error-paths.test.ts', 'test/generated.test.ts', 'test/connection/error-mapping-more.test.ts', 'test/connection/error-redaction-foreign.test.ts'],
  'templating/bind-sql.ts': ['test/templating-sql.test.ts', 'test/templating-safety.test.ts', 'test/templating.test.ts', 'test/templating-bind-edges.test.ts'],
  'actions/statement-kind.ts': ['test/actions/statement-kind-refusal.test.ts', 'test/actions/statement-kind.test.ts', 'test/actions/sql-reading.test.ts'],
  // errors.test and faults.test start servers of their own: too slow per mutant. error-paths.test reaches the
  // mapped failures, session-reset.test the run-alone path (VACUUM), step-tail and session-state the early
  // answer and the pooler paths, failed-step-session.test whether a failed step keeps its session, run-alone.test
  // which statements refused with 25001 run again alone, pooler-reset-failure.test a transaction pooler's reset that fails,
  // ignored-cancel.test what cancelAndSettle() does with a statement that outlives the cancel (terminate, ignoredCancel).
  // 2026-11-30: the refusals' texts, COMMIT_UNCONFIRMED, the TLS probe, redaction, the early answer's tail (a relay holding replies back), the plan around the statement (step-plan), a tag-checked write behind a transaction pooler.
  'connection/execute.ts': ['test/connection/execute.test.ts', 'test/connection/error-paths.test.ts', 'test/connection/step-tail.test.ts', 'test/connection/session-state.test.ts', 'test/connection/session-reset.test.ts', 'test/connection/failed-step-session.test.ts', 'test/connection/run-alone.test.ts', 'test/connection/pooler-reset-failure.test.ts', 'test/connection/ignored-cancel.test.ts', 'test/connection/step-refusals.test.ts', 'test/connection/commit-unconfirmed.test.ts', 'test/connection/tls-required-login.test.ts', 'test/connection/step-redaction.test.ts', 'test/connection/early-answer-session.test.ts', 'test/connection/early-answer-tail.test.ts', 'test/connection/unguarded-session.test.ts', 'test/connection/step-plan.test.ts', 'test/connection/pooler-tag-check.test.ts', 'test/connection/reply-timing.test.ts', 'test/connection/step-abandon.test.ts', 'test/connection/pooler-format-memory.test.ts', 'test/connection/pooler-handover.test.ts'],
  // pool-wait.test and step-tail.test reach checkout's waits and closeAll's tails; pool-sessions.test the output formats,
  // session pooling and holdPool (reached otherwise only by execute.test, pgbouncer.test and the listen tests);
  // pool-closing.test closeAll()'s wait for connections still closing (a peer that holds back its FIN).
  // pool-transaction-status.test: the readyForQuery listener (a failed transaction's status behind a transaction pooler).
  'connection/pools.ts': ['test/connection/format-fixes.test.ts', 'test/connection/pool-lifecycle.test.ts', 'test/connection/pools.test.ts', 'test/connection/ssl-plan.test.ts', 'test/connection/session-state.test.ts', 'test/connection/pool-wait.test.ts', 'test/connection/step-tail.test.ts', 'test/connection/pool-sessions.test.ts', 'test/connection/pool-closing.test.ts', 'test/connection/pool-transaction-status.test.ts'],
  'connection/config.ts': ['test/connection/config.test.ts', 'test/connection/config-ssh.test.ts'],
  // ssl.test.ts starts five servers per run; ssl-plan.test.ts covers the modes through TLS proxies.
  'connection/tls.ts': ['test/connection/ssl-plan.test.ts'],
  // new-row-state-edits: R166's refusal of an edited cursor; new-row-reread-bounds: the bounds of the re-reads after a retype, R146's SQLSTATE filter.
  'triggers/table-cursor.ts': ['test/triggers/table-cursor-state.test.ts', 'test/triggers/key-ids-timezone.test.ts', 'test/triggers/new-row.test.ts', 'test/triggers/new-row-key-ids.test.ts', 'test/triggers/key-moved.test.ts', 'test/triggers/key-retyped-rebuilt.test.ts', 'test/triggers/key-retyped.test.ts', 'test/triggers/new-row-cursor-edges.test.ts', 'test/triggers/new-row-state-edits.test.ts', 'test/triggers/new-row-reread-bounds.test.ts'],
  // table-sync.test, sync-rows.test and the sync-handover files start replication servers of their own (the handover's
  // recordBatch path is reached only there): too slow per mutant. These read table-sync from the suite's server:
  // sync-keyset-edges.test the refusals, cursors that do not fit, old states, batch sizes, progress, ids; every key kind in
  // batches of 2 (sync-key-types), edited states (sync-state-edits), rows that widen (sync-batch-shrink). database-output-
  // defaults, sync-session-path and trojan-operators reach it too, but pin copyInSnapshot's and key-order.ts' work.
  // sync-retyped-state.test: R165's keyShape (a key retyped or recollated between batches refuses the state, whichever form its cursor has).
  'triggers/sync/keyset.ts': ['test/triggers/sync-keyset-edges.test.ts', 'test/triggers/sync-state-edits.test.ts', 'test/triggers/sync-key-types.test.ts', 'test/triggers/sync-batch-shrink.test.ts', 'test/triggers/sync-id-format.test.ts', 'test/triggers/sync-retyped-midbatch.test.ts', 'test/security/trojan-text-cast.test.ts', 'test/triggers/key-retyped.test.ts', 'test/triggers/key-moved.test.ts', 'test/triggers/sync-cursor-stale-forms.test.ts', 'test/triggers/sync-proto-key.test.ts', 'test/triggers/sync-enum-renamed.test.ts', 'test/triggers/sync-retyped-state.test.ts'],
  // R175: the enum labels' fingerprint of table-sync's cursor (the handover's refusal is reached only by sync-handover-enum-renamed, a replication server).
  'triggers/enum-labels.ts': ['test/triggers/sync-enum-renamed.test.ts'],
  // The key type's own operators: table-sync's cursor over every key kind (one column, rows of one schema's operators,
  // mixed schemas column by column), new-row's composite cursors, and the look-alikes in public that must never run;
  // key-order-edges.test types without an ordering, an opclass split over two schemas, a schema name that needs quoting.
  'triggers/key-order.ts': ['test/triggers/key-order-edges.test.ts', 'test/triggers/sync-key-types.test.ts', 'test/security/trojan-operators.test.ts', 'test/triggers/table-cursor-state.test.ts', 'test/triggers/new-row.test.ts', 'test/triggers/key-order-refusals.test.ts', 'test/triggers/key-type-schema.test.ts', 'test/triggers/key-retyped.test.ts', 'test/triggers/sync-retyped-midbatch.test.ts', 'test/security/trojan-text-cast.test.ts', 'test/triggers/key-moved.test.ts', 'test/security/trojan-domain-container.test.ts', 'test/triggers/key-retyped-rebuilt.test.ts', 'test/triggers/domain-reach-refusal.test.ts'],
  'triggers/key-input.ts': ['test/triggers/sync-key-types.test.ts', 'test/triggers/sync-keyset-edges.test.ts', 'test/triggers/sync-state-edits.test.ts', 'test/triggers/sync-cursor-stale-forms.test.ts', 'test/security/trojan-text-cast.test.ts'], // R143: keys read through the type's input function (the handover's files, replication servers, reach it too)
  'triggers/domain-reach.ts': ['test/security/trojan-domain-container.test.ts', 'test/triggers/domain-reach-refusal.test.ts'], // R142: the domain-reach refusal (key-order's ORDER_SQL, handover-types)
  'triggers/horizon.ts': ['test/triggers/horizon.test.ts', 'test/triggers/table-cursor-state.test.ts', 'test/triggers/new-row-late-commits.test.ts'],
  // row-changes.test's 100 activate/subscribe cycles would run per mutant; outbox-reader.test pins the same reads.
  'triggers/outbox-reader.ts': ['test/triggers/outbox-reader.test.ts', 'test/triggers/row-changes-large.test.ts', 'test/triggers/outbox-reader-owner.test.ts'],
  'triggers/replication/lsn.ts': ['test/triggers/lsn.test.ts'],
  // subscribeTrigger's acknowledgement (the handed position, the standby status updates of connection/replication.ts):
  // cdc-ack.test pins each rule in a few seconds on one replication server of its own; table-changes-cdc.test,
  // cdc-streaming.test and cdc-kill.test reach the same code, but run a minute or more per mutant.
  'triggers/replication/stream.ts': ['test/triggers/cdc-ack.test.ts', 'test/triggers/cdc-keepalive-reply.test.ts', 'test/triggers/cdc-ack-backoff.test.ts', 'test/triggers/cdc-ack-commit.test.ts', 'test/triggers/cdc-ack-close.test.ts', 'test/triggers/cdc-stream-relay.test.ts', 'test/triggers/cdc-stream-bounds.test.ts'],
  'connection/replication.ts': ['test/triggers/cdc-ack.test.ts', 'test/triggers/cdc-keepalive-reply.test.ts', 'test/triggers/cdc-status-timer.test.ts', 'test/triggers/cdc-stream-relay.test.ts'],
  // The filter in front of the replication connection's parser (REVIEW8 R151): pure, every chunking of a synthetic stream.
  'connection/wal-frames.ts': ['test/connection/wal-frames.test.ts'],
  // row-changes' (and schema-changes') subscription acknowledgement: outbox-ack.test, on the suite's server. row-changes.test
  // reaches it too, but its 100 activate/subscribe cycles would run for every mutant of the loop.
  'triggers/outbox-subscription.ts': ['test/triggers/outbox-ack.test.ts', 'test/triggers/row-changes-lease.test.ts', 'test/triggers/outbox-lease-edges.test.ts'],
  'triggers/replication/checked-position.ts': ['test/triggers/cdc-position-check.test.ts'], // R132's state check is pure: cdc-state-edits.test shows it end to end, on a replication server of its own
  // pollTrigger's acknowledgement: the slot advanced only to the state's position, the position a poll returns (whole
  // transactions, or `inside` one). Each file starts its own replication server; table-changes-cdc.test's polls,
  // cdc-poll-noise.test's re-peeks and cdc-poll-large.test's 12,000-row transaction (the only one that stops `inside`).
  'triggers/replication/peek.ts': ['test/triggers/cdc-poll-position.test.ts', 'test/triggers/cdc-poll-filled.test.ts', 'test/triggers/table-changes-cdc.test.ts', 'test/triggers/cdc-poll-noise.test.ts', 'test/triggers/cdc-poll-large.test.ts'],
};

const root = fileURLToPath(new URL('..', import.meta.url));
// A module, or a part of one as Stryker writes it: connection/errors/map.ts:200-240; several parts of
// one module joined by '+' make one run (connection/statement.ts:310:5-310:40+connection/statement.ts:355:9-355:19).
// --tests=a.test.ts,b.test.ts replaces the module's listed tests (a cheap first pass, or a second
// pass with the slow files on the first pass's survivors, named by line:column ranges).
const testsOverride = process.argv.find((arg) => arg.startsWith('--tests='))?.slice('--tests='.length).split(',');
const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('--tests='));
const fileOf = (target: string) => target.replace(/:[\d:-]+$/, '');
const unknown = requested.flatMap((target) => target.split('+')).filter((part) => !(fileOf(part) in MUTATION_TARGETS));
if (unknown.length) {
  console.error(`not a mutation target: ${unknown.join(', ')} (targets: ${Object.keys(MUTATION_TARGETS).join(', ')})`);
  process.exit(2);
}
const modules = requested.length ? requested : Object.keys(MUTATION_TARGETS);
const base = JSON.parse(readFileSync(join(root, 'stryker.config.json'), 'utf8')) as Record<string, unknown> & { jest: object };
// The whole target, ranges included: two runs of parts of one file at once must not share a config or report.
const slug = (module: string) => module.replace(/\.ts/g, '').replace(/[/:+]/g, '-');
mkdirSync(join(root, 'reports', 'mutation'), { recursive: true });

const server = process.env.PG_TEST_URL ? undefined : await startEmbeddedDatabase();
const env = { ...process.env, PG_TEST_URL: process.env.PG_TEST_URL ?? server!.url };
const rows: string[] = [];
try {
  for (const module of modules) {
    const tests = testsOverride ?? MUTATION_TARGETS[fileOf(module.split('+')[0]!)]!;
    const report = join('reports', 'mutation', `${slug(module)}.json`);
    const config = {
      ...base,
      mutate: module.split('+'),
      // MUTATION_TIMEOUT_MS: on a loaded machine a test runner restarted after a real hang needs more than the default.
      ...(process.env.MUTATION_TIMEOUT_MS ? { timeoutMS: Number(process.env.MUTATION_TIMEOUT_MS) } : {}),
      jest: {
        ...base.jest,
        // Generous timeouts: the machine is shared, and a slow run must not pass for a failing one.
        config: { testMatch: tests.map((test) => `<rootDir>/${test}`), setupFiles: ['<rootDir>/test/harness/stryker-activate.cjs'], testTimeout: 120_000 },
      },
      jsonReporter: { fileName: report },
    };
    const configFile = join('reports', 'mutation', `${slug(module)}.stryker.json`);
    writeFileSync(join(root, configFile), JSON.stringify(config, null, 2));
    console.log(`\n=== ${module} (tests: ${tests.join(', ')}) ===`);
    const started = Date.now();
    // Not spawnSync: the embedded server's log goes through a pipe this process reads. A blocked event
    // loop stops reading it; once the pipe is full every backend blocks writing its log (connections
    // stuck in "initializing" or "authentication"), and each mutant from then on times out.
    const run = await new Promise<{ status: number | null }>((resolve) => {
      const child = spawn(process.execPath, [join(root, 'node_modules/@stryker-mutator/core/bin/stryker.js'), 'run', configFile], { cwd: root, env, stdio: 'inherit' });
      child.on('exit', (status) => resolve({ status }));
    });
    const minutes = ((Date.now() - started) / 60_000).toFixed(1);
    rows.push(run.status === 0 ? scoreRow(module, join(root, report), minutes) : `| ${module} | failed (exit ${run.status}) | | | | ${minutes} |`);
  }
} finally {
  await server?.dispose();
}
const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).stdout.trim() !== '';
console.log(`\nMeasured on ${commit}${dirty ? ' (with uncommitted changes)' : ''}:\n`);
console.log(`| module | score | killed (+timeout) | survived | no coverage | minutes |\n|---|---|---|---|---|---|\n${rows.join('\n')}`);

function scoreRow(module: string, reportFile: string, minutes: string): string {
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { files: Record<string, { mutants: { status: string }[] }> };
  const count: Record<string, number> = {};
  for (const file of Object.values(report.files)) for (const mutant of file.mutants) count[mutant.status] = (count[mutant.status] ?? 0) + 1;
  const killed = (count.Killed ?? 0) + (count.Timeout ?? 0);
  const valid = killed + (count.Survived ?? 0) + (count.NoCoverage ?? 0);
  const score = valid ? ((100 * killed) / valid).toFixed(1) : 'n/a';
  return `| ${module} | ${score} % | ${killed} | ${count.Survived ?? 0} | ${count.NoCoverage ?? 0} | ${minutes} |`;
}
