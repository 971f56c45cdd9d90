/**
 * Everything the CLI writes goes through here: results to stdout, messages and progress to
 * stderr (redacted), so a script can pipe stdout into a JSON tool and still see what went wrong.
 */
import { redact } from './redact.js';

/** A result: JSON, two-space indented (jq and people both read it). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Human-readable output for a command that has a result of its own (test-connection, actions, demo). */
export function printLine(text = ''): void {
  process.stdout.write(redact(text) + '\n');
}

export function printNotice(text: string): void {
  process.stderr.write(redact(text) + '\n');
}

/**
 * Progress of long work (first start of the embedded server, demo steps). Only on a terminal:
 * a script capturing stderr gets nothing but the error, if there is one.
 */
export function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(redact(`› ${text}`) + '\n');
}

/** A progress line that rewrites itself (a counter); undefined when stderr is not a terminal. */
export function liveProgress(): { update(text: string): void; done(): void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  let shown = false;
  return {
    update(text) {
      process.stderr.write(`\r\x1b[K› ${redact(text)}`);
      shown = true;
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}
