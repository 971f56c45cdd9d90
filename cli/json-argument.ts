/**
 * --input and --context take JSON inline or @file (@- for stdin), like curl's --data. Anything
 * unreadable or not JSON is a usage error (exit 2) naming the flag, before any connection is made.
 */
import { readFileSync } from 'node:fs';
import { usageError } from './failures.js';

export function readJsonArgument(value: string, flag: string): unknown {
  const fromFile = value.startsWith('@');
  const source = fromFile ? value.slice(1) : undefined;
  const text = source === undefined ? value : readSource(source, flag);
  try {
    return JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw usageError(`${flag} ${source === undefined ? 'is' : `file ${source} is`} not valid JSON: ${reason}`, [
      `Give ${flag} a JSON value, e.g. ${flag} '{"query": "SELECT 1"}', or ${flag} @file.json to read it from a file.`,
    ]);
  }
}

function readSource(path: string, flag: string): string {
  if (path === '') throw usageError(`${flag} @ needs a file name after the @ (or @- for stdin)`);
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw usageError(`${flag} @${path}: cannot read the file (${reason})`, [`Check that ${path} exists and is readable.`]);
  }
}
