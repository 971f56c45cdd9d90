/**
 * --input and --context take JSON inline or @file (@- for stdin), like curl's --data. Anything
 * unreadable or not JSON is a usage error (exit 2) naming the flag, before any connection is made.
 */
import { MAX_ARGUMENT_BYTES, readAtMost } from './bounded-read.js';
import { usageError } from './failures.js';

const EXAMPLES: Record<string, string> = {
  '--connection': `--connection @connection.json holding {"host": "…", "database": "…", "user": "…"}`,
  '--input': `--input '{"query": "SELECT 1"}'`,
  '--context': `--context '{"trigger": {"email": "ada@example.com"}}'`,
};

export function readJsonArgument(value: string, flag: string): unknown {
  const fromFile = value.startsWith('@');
  const source = fromFile ? value.slice(1) : undefined;
  const text = source === undefined ? value : readSource(source, flag);
  try {
    return JSON.parse(text);
  } catch (error) {
    // JSON.parse's message quotes the text around the mistake, which may be a password or a
    // key: only say where it is.
    const where = positionOf(text, error);
    throw usageError(`${flag} ${source === undefined ? 'is' : `file ${source} is`} not valid JSON${where}`, [
      `Give ${flag} a JSON value (strings in double quotes), e.g. ${EXAMPLES[flag] ?? `${flag} '{…}'`}, or ${flag} @file.json to read it from a file.`,
    ]);
  }
}

/**
 * " (line L, column C)" of the mistake, or "" when it cannot be told. Node 20 reports no offset,
 * only the unexpected character and a snippet around it, which are located in the text here.
 */
function positionOf(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  let offset: number | undefined;
  const reported = /\bposition (\d+)/.exec(message)?.[1];
  if (reported !== undefined) offset = Number(reported);
  else if (/Unexpected end of JSON input/.test(message)) offset = text.length;
  else {
    // Unexpected token 'H', ..."assword": Hunter2Sec"... is not valid JSON
    const found = /^Unexpected token '(.)', (?:\.\.\.)?"(.*)"(?:\.\.\.)? is not valid JSON$/s.exec(message);
    const at = found ? text.indexOf(found[2]!) : -1;
    if (found && at >= 0 && found[2]!.includes(found[1]!)) offset = at + found[2]!.indexOf(found[1]!);
  }
  if (offset === undefined) return '';
  const before = text.slice(0, offset).split('\n');
  return ` (line ${before.length}, column ${before[before.length - 1]!.length + 1})`;
}

function readSource(path: string, flag: string): string {
  if (path === '') throw usageError(`${flag} @ needs a file name after the @ (or @- for stdin)`);
  let text: string | undefined;
  try {
    text = readAtMost(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw usageError(`${flag} @${path}: cannot read the file (${reason})`, [`Check that ${path} exists and is readable.`]);
  }
  if (text === undefined) {
    const cap = `${MAX_ARGUMENT_BYTES / 1024 / 1024} MiB`;
    throw usageError(`${flag} @${path} is larger than ${cap}, the most pg-actions reads for one argument`, [
      `Give ${flag} at most ${cap} of JSON; move bulk data into the database (COPY) rather than through one step.`,
    ]);
  }
  return text;
}
