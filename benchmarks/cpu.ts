// CPU time per process over a phase of a benchmark, read from /proc (Linux). A benchmark's ratio
// says how close a figure is to its floor; this says what the figure cost and where: the engine or
// gateway process, redis-server, the Kafka broker, the load generator. On a machine whose cores
// are all busy, a component's share is what another one could not use.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Row } from './report.js';

/** Linux's USER_HZ: /proc reports CPU time in these ticks (100 on every mainstream architecture). */
const ticksPerSecond = 100;

export interface MeteredProcess {
  /** What the process is, as the table names it ("engine process", "redis-server"). */
  name: string;
  /** Undefined: not a local process (an external broker, say); reported as not measured. */
  pid: number | undefined;
  /** Only this thread of the process (its main thread: tid = pid). */
  tid?: number;
}

export interface CpuUsage {
  wallSeconds: number;
  cores: number;
  /** CPU seconds per process over the phase; undefined when it could not be read. */
  seconds: Record<string, number | undefined>;
  /** Names in `seconds` that are one thread of another process there. */
  threads: string[];
}

/** utime + stime of a process (all its threads, or one), in seconds; undefined when /proc has no such process. */
function cpuSeconds(pid: number, tid?: number): number | undefined {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields from after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

/** Starts measuring now; `stop()` returns each process's CPU seconds since. Processes may be added later (a load generator started mid-phase). */
export class CpuMeter {
  private readonly startedAt = performance.now();
  private readonly from = new Map<string, { pid: number | undefined; tid: number | undefined; seconds: number | undefined }>();

  constructor(processes: MeteredProcess[]) {
    for (const p of processes) this.add(p);
  }

  /** A process that starts during the phase counts from zero (all its CPU time is in the phase). */
  add(p: MeteredProcess, startedInPhase = false): void {
    this.from.set(p.name, { pid: p.pid, tid: p.tid, seconds: p.pid === undefined ? undefined : startedInPhase ? 0 : cpuSeconds(p.pid, p.tid) });
  }

  /** Reads the processes now. A process that exited during the phase is read by `last` (call it before it exits). */
  stop(last: Record<string, number | undefined> = {}): CpuUsage {
    const seconds: Record<string, number | undefined> = {};
    for (const [name, { pid, tid, seconds: before }] of this.from) {
      const now = name in last ? last[name] : pid === undefined ? undefined : cpuSeconds(pid, tid);
      seconds[name] = before === undefined || now === undefined ? undefined : Math.max(0, now - before);
    }
    const threads = [...this.from].filter(([, p]) => p.tid !== undefined).map(([name]) => name);
    return { wallSeconds: (performance.now() - this.startedAt) / 1000, cores: availableParallelism(), seconds, threads };
  }
}

/** Two phases' usage as one (rounds of the same measurement): wall and CPU seconds added. */
export function addUsage(a: CpuUsage | undefined, b: CpuUsage): CpuUsage {
  if (a === undefined) return b;
  const seconds: Record<string, number | undefined> = {};
  for (const name of new Set([...Object.keys(a.seconds), ...Object.keys(b.seconds)])) {
    const x = a.seconds[name];
    const y = b.seconds[name];
    seconds[name] = x === undefined || y === undefined ? undefined : x + y;
  }
  return { wallSeconds: a.wallSeconds + b.wallSeconds, cores: b.cores, seconds, threads: [...new Set([...a.threads, ...b.threads])] };
}

/** A child's CPU seconds so far; call it just before the child exits (its /proc entry goes with it). */
export function childCpuSeconds(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : cpuSeconds(pid);
}

/** CPU seconds of every measured process added; a thread is part of a process metered beside it, so it is not added again. */
export function measuredCpuSeconds(usage: CpuUsage): number {
  let total = 0;
  for (const [name, seconds] of Object.entries(usage.seconds)) if (seconds !== undefined && !usage.threads.includes(name)) total += seconds;
  return total;
}

/**
 * Rows for one phase: CPU µs per unit of work (event, request) by process, and the cores the
 * phase kept busy out of those the machine has.
 */
export function cpuRows(phase: string, usage: CpuUsage, work: number, unit: string): Row[] {
  const rows: Row[] = [];
  for (const [name, seconds] of Object.entries(usage.seconds)) {
    const thread = usage.threads.includes(name);
    if (seconds === undefined) {
      rows.push({ metric: `${phase} CPU, ${name}`, value: Number.NaN, unit: 'not measured (not a local process)' });
      continue;
    }
    rows.push({ metric: `${phase} CPU, ${name}`, value: work > 0 ? (seconds * 1e6) / work : Number.NaN, unit: thread ? `µs/${unit} (${(seconds / usage.wallSeconds).toFixed(2)} of a core)` : `µs/${unit}` });
  }
  const total = measuredCpuSeconds(usage);
  rows.push({ metric: `${phase} cores busy (measured processes)`, value: usage.wallSeconds > 0 ? total / usage.wallSeconds : Number.NaN, unit: `of ${usage.cores} cores` });
  return rows;
}
