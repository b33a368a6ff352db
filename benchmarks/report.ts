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
  const fmt = (n: number | undefined) => (n === undefined ? '' : Number.isNaN(n) ? 'n/a' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
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

/** The value at rank p (0..1) of ascending values; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
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

export interface SideBySide {
  /** Median ops/s of the measured code and of its floor over the rounds. */
  value: number;
  floor: number;
  /** Median of the per-round ratios value/floor. */
  ratio: number;
  rounds: { floor: number; value: number; ratio: number }[];
}

/**
 * Measures `floor` and `measured` in alternating rounds (floor, measured, floor, measured, ...)
 * and reports medians. A shared machine's speed drifts over seconds: a floor taken once, before
 * or after, can land in a fast or a slow spell and move the ratio by 10 points; adjacent rounds
 * see the same spell, and the median drops the round that did not.
 */
export async function sideBySide(rounds: number, floor: (round: number) => Promise<number>, measured: (round: number) => Promise<number>): Promise<SideBySide> {
  const results: SideBySide['rounds'] = [];
  for (let r = 0; r < rounds; r++) {
    const f = await floor(r);
    const v = await measured(r);
    results.push({ floor: f, value: v, ratio: v / f });
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  return { value: median(results.map((r) => r.value)), floor: median(results.map((r) => r.floor)), ratio: median(results.map((r) => r.ratio)), rounds: results };
}
