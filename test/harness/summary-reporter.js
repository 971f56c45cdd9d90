/**
 * Writes the plain closing line CI reads ("tests: N passed, N failed, N skipped") to
 * test-output/summary.txt; .ci/run prints it after jest's own summary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';

export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests, numRuntimeErrorTestSuites } = results;
    let text = `tests: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped\n`;
    if (numRuntimeErrorTestSuites > 0) text = `suites that could not run: ${numRuntimeErrorTestSuites}\n` + text;
    mkdirSync('test-output', { recursive: true });
    writeFileSync('test-output/summary.txt', text);
  }
}
