#!/usr/bin/env node
// The pg-actions command. In the repository the TypeScript sources run through tsx, so `npm start`
// and the tests need no build step (and never run a stale dist/); an installed package ships only
// dist/ and runs dist/cli/main.js.
import { existsSync } from 'node:fs';

const source = new URL('../cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
