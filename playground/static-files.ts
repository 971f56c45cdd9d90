/**
 * The page itself: three files from playground/public, served from a fixed list (no path is
 * ever joined from the URL, so nothing else on disk can be reached).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

// Next to this module when run from source; a build in dist/ reaches back to the sources.
const PUBLIC_DIR = [new URL('./public/', import.meta.url), new URL('../../playground/public/', import.meta.url)]
  .map((url) => fileURLToPath(url))
  .find((dir) => existsSync(dir + 'index.html'));

export function isPagePath(path: string): boolean {
  return Object.hasOwn(FILES, path);
}

export async function readPageFile(path: string): Promise<{ body: Buffer; type: string } | undefined> {
  const entry = FILES[path];
  if (!entry || !PUBLIC_DIR) return undefined;
  return { body: await readFile(PUBLIC_DIR + entry.file), type: entry.type };
}
