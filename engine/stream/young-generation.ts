// The engine's V8 young generation. Node's default semi-space (16 MB at most) fills every few
// tens of milliseconds when the engine reads ~100,000 events a second, and each scavenge copies
// what is still alive: the batches, chunks and changes waiting on the decode worker, Redis and
// Kafka, several MB every time. A 64 MB semi-space scavenges a quarter as often for the same live set.
//
// V8 fixes the size when the process starts (v8.setFlagsFromString afterwards has no effect), so
// it is a node flag: `node --max-semi-space-size=64 bin/instock.js engine`. `npm start`, `npm run
// bench` and .ci/run pass it; the engine logs a hint when it runs without it.
// Measured (README, "Node's young generation"): `.instock/prof/sus.mjs 400000`, engine CPU
// 14.8 µs per event against 15.9-17.1 without the flag.

/** The semi-space the engine is meant to run with, in MB. */
export const semiSpaceMbRecommended = 64;

const semiSpaceFlag = /--max[-_]semi[-_]space[-_]size(?:=|\s+)(\d+)/g;

/**
 * The --max-semi-space-size node was started with, in MB (node reads NODE_OPTIONS first, then its
 * command line: the last one given wins); undefined: node's default.
 */
export function semiSpaceMb(execArgv: readonly string[] = process.execArgv, nodeOptions: string | undefined = process.env.NODE_OPTIONS): number | undefined {
  let mb: number | undefined;
  for (const text of [nodeOptions ?? '', execArgv.join(' ')]) {
    for (const match of text.matchAll(semiSpaceFlag)) mb = Number(match[1]);
  }
  return mb;
}

/** A line for the engine's log when the young generation is below the recommended one; undefined when it is not. */
export function semiSpaceHint(mb = semiSpaceMb()): string | undefined {
  if (mb !== undefined && mb >= semiSpaceMbRecommended) return undefined;
  const now = mb === undefined ? "node's default semi-space (16 MB)" : `--max-semi-space-size=${mb}`;
  return `engine: running with ${now}; start node with --max-semi-space-size=${semiSpaceMbRecommended} for fewer young collections (~7 % less CPU per event, README "Node's young generation")`;
}
