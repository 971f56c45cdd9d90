/**
 * A host worker in a process of its own (children/subscriber.ts), for tests that kill or stop it:
 * resolves once it has subscribed; `batches` fills as it handles them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('./children/subscriber.ts', import.meta.url));

export interface SubscriberJob {
  key: string;
  connection: object;
  config: object;
  /** hang: the first batch after `hangAfter` acknowledged ones is received but never acknowledged. */
  mode?: 'ack' | 'hang';
  hangAfter?: number;
}

export interface SubscriberProcess {
  process: ChildProcess;
  batches: { ids: string[]; keys: number[] }[];
}

/** Starts the worker; it is added to `children` (for the caller to kill at the end). */
export function subscriberProcess(job: SubscriberJob, children: ChildProcess[]): Promise<SubscriberProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    cwd: ROOT,
    env: { ...process.env, SUBSCRIBER_JOB: JSON.stringify(job) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const found: SubscriberProcess = { process: child, batches: [] };
  let buffer = '';
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, newline)) as { ready?: boolean; ids?: string[]; keys?: number[] };
        buffer = buffer.slice(newline + 1);
        if (line.ready) resolve(found);
        else found.batches.push({ ids: line.ids!, keys: line.keys! });
      }
    });
  });
}
