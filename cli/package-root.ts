/**
 * The folder holding pg-actions' package.json. The CLI runs from cli/*.ts in the repo and from
 * dist/cli/*.js after a build, so paths like .cache/ are found by walking up, not by a fixed "../".
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let folder = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(folder, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'pg-actions') {
      return (cached = folder);
    }
    const parent = dirname(folder);
    if (parent === folder) throw new Error('pg-actions: cannot find the package folder (no package.json named pg-actions above the CLI)');
    folder = parent;
  }
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
