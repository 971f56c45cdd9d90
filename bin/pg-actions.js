#!/usr/bin/env node
// The pg-actions command. A built package runs dist/cli/main.js; in the repository (no build)
// the TypeScript sources run through tsx, so `npm start` and the tests need no build step.
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../cli/main.ts', import.meta.url).href);
}
