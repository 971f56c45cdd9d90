import { scanSql } from './sql-scanner.js';

/** The SQL's words in upper case, in order, skipping strings, quoted identifiers and comments. */
export function sqlKeywords(sql: string): string[] {
  const words: string[] = [];
  for (const token of scanSql(sql)) if (token.kind === 'word') words.push(token.upper);
  return words;
}
