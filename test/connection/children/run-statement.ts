/**
 * Runs one statement through execute() in its own process (the parent test may pass node flags
 * such as --max-old-space-size) and prints one JSON line: the error code or row count, and the
 * peak RSS and heap growth while it ran. A crash shows as a non-zero exit without that line.
 * Input: env STATEMENT_JOB = JSON { connection, statement, thenText? }.
 */
import { closeAll, execute, isPgActionsError } from '../../../connection/index.js';

const job = JSON.parse(process.env.STATEMENT_JOB!) as { connection: object; statement: { text: string; maxResultBytes?: number }; thenText?: string };
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const before = process.memoryUsage();
let peakRss = before.rss;
let peakHeap = before.heapUsed;
const sample = () => {
  const now = process.memoryUsage();
  peakRss = Math.max(peakRss, now.rss);
  peakHeap = Math.max(peakHeap, now.heapUsed);
};
const sampler = setInterval(sample, 1);
const started = performance.now();
const outcome: Record<string, unknown> = {};
try {
  const result = await execute(job.connection, job.statement);
  outcome.rowCount = result.rowCount;
} catch (error) {
  outcome.code = isPgActionsError(error) ? error.code : String(error);
}
outcome.ms = Math.round(performance.now() - started);
clearInterval(sampler);
sample();
if (job.thenText) outcome.then = (await execute(job.connection, { text: job.thenText })).rows;
await closeAll();
outcome.rssGrowthMiB = (peakRss - before.rss) / 1048576;
outcome.heapGrowthMiB = (peakHeap - before.heapUsed) / 1048576;
console.log(JSON.stringify(outcome));
