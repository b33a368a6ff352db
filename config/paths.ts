// Where the project's own files are, whether running from dist/ (compiled) or from source (vitest).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let dir = start;
  while (true) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'instock') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the instock project root above ${start}`);
    dir = parent;
  }
}

/** The folder holding Instock's package.json. */
export const projectRoot = findRoot(dirname(fileURLToPath(import.meta.url)));

export function projectPath(...parts: string[]): string {
  return join(projectRoot, ...parts);
}
