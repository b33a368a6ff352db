#!/usr/bin/env node
// Entry point of the `instock` command: runs the compiled CLI (npm run build writes dist/). The
// engine wants node started with --max-semi-space-size=64 (engine/stream/young-generation.ts); a
// shebang cannot pass it everywhere (`env -S` is missing from BusyBox), so the npm scripts do.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/cli/instock.js', import.meta.url));
if (!existsSync(cli)) {
  console.error('instock: dist/ is missing; run `npm run build` (or `npm run setup` on a fresh machine) first');
  process.exit(1);
}
await import(cli);
