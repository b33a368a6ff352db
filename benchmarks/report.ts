// Benchmark output: a table on stdout and a JSON file under benchmarks/results/.

import { mkdirSync, writeFileSync } from 'node:fs';
import { projectPath } from '../config/paths.js';

export interface Row {
  metric: string;
  value: number;
  unit: string;
  floor?: number;
  target?: string;
  /** value / floor, when a floor was measured in the same run. */
  ratio?: number;
  pass?: boolean;
}

export function printTable(title: string, rows: Row[]): void {
  const fmt = (n: number | undefined) => (n === undefined ? '' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
  const lines = [['metric', 'value', 'unit', 'floor (same run)', 'ratio', 'target', 'ok'], ...rows.map((r) => [r.metric, fmt(r.value), r.unit, fmt(r.floor), r.ratio === undefined ? '' : `${(r.ratio * 100).toFixed(0)} %`, r.target ?? '', r.pass === undefined ? '' : r.pass ? 'yes' : 'NO'])];
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  process.stdout.write(`\n${title}\n`);
  for (const [i, line] of lines.entries()) {
    process.stdout.write(`${line.map((cell, c) => (c === 0 || c === 2 || c === 5 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')}\n`);
    if (i === 0) process.stdout.write(`${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  }
}

export function writeResults(name: string, data: Record<string, unknown>): string {
  const dir = projectPath('benchmarks', 'results');
  mkdirSync(dir, { recursive: true });
  const file = `${dir}/${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({ benchmark: name, at: new Date().toISOString(), ...data }, null, 2)}\n`);
  return file;
}

export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Runs `op` with `concurrency` in flight until `count` ops or `maxMs` elapse; returns ops/s. */
export async function rate(count: number, concurrency: number, maxMs: number, op: (i: number) => Promise<unknown>): Promise<{ opsPerSec: number; done: number }> {
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + maxMs;
  const worker = async () => {
    while (next < count && performance.now() < deadline) await op(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { opsPerSec: next / seconds, done: next };
}
