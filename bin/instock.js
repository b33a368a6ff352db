#!/usr/bin/env -S node --max-semi-space-size=64
// Entry point of the `instock` command: runs the compiled CLI (npm run build writes dist/). The
// shebang gives node the engine's young generation (engine/stream/young-generation.ts); run as
// `node bin/instock.js`, pass --max-semi-space-size=64 to node yourself.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/cli/instock.js', import.meta.url));
if (!existsSync(cli)) {
  console.error('instock: dist/ is missing; run `npm run build` (or `npm run setup` on a fresh machine) first');
  process.exit(1);
}
await import(cli);
