/**
 * Writes the plain closing line CI reads ("tests: N passed, N failed, N skipped") to
 * test-output/summary.txt; .ci/run prints it after jest's own summary.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const NOT_RUN = 'test-output/not-run';

export default class SummaryReporter {
  onRunStart() {
    rmSync(NOT_RUN, { recursive: true, force: true });
  }

  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests, numRuntimeErrorTestSuites } = results;
    let text = `tests: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped\n`;
    if (numRuntimeErrorTestSuites > 0) text = `suites that could not run: ${numRuntimeErrorTestSuites}\n` + text;
    // Tests skipped because a tool is missing (test/harness/not-run.ts): said again after jest's summary.
    const notRun = existsSync(NOT_RUN) ? readdirSync(NOT_RUN).map((name) => readFileSync(`${NOT_RUN}/${name}`, 'utf8').trim()) : [];
    for (const line of notRun) process.stderr.write(`\n*** ${line}\n`);
    if (notRun.length) text = notRun.map((line) => `not run: ${line}\n`).join('') + text;
    mkdirSync('test-output', { recursive: true });
    writeFileSync('test-output/summary.txt', text);
  }
}
