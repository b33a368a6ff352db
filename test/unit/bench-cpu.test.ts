import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CpuMeter, cpuRows } from '../../benchmarks/cpu.js';

function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) Math.sqrt(Math.random());
}

describe('benchmark CPU meter (/proc)', () => {
  it('counts the CPU a thread burns, per unit of work, and the cores busy', () => {
    const meter = new CpuMeter([
      { name: 'process', pid: process.pid },
      { name: 'main thread', pid: process.pid, tid: process.pid },
    ]);
    spin(300);
    const usage = meter.stop();
    // Ticks are 10 ms: a 300 ms spin reads 0.27-0.33 s on an unloaded core, less when shared.
    expect(usage.seconds['main thread']).toBeGreaterThanOrEqual(0.1);
    expect(usage.seconds['main thread']).toBeLessThanOrEqual(usage.wallSeconds + 0.02);
    // The process's time holds the thread's, but the kernel rounds each reading's user and system
    // times down to 10 ms ticks separately: a difference of two readings is off by less than two
    // ticks either way, so the process's may read up to four ticks under the thread's (one CI run
    // read 0.29 against 0.31 under the parallel tests' load).
    expect(usage.seconds.process).toBeGreaterThanOrEqual(usage.seconds['main thread']! - 0.045);
    expect(usage.threads).toEqual(['main thread']);

    const rows = cpuRows('(x)', usage, 1_000, 'event');
    const main = rows.find((r) => r.metric === '(x) CPU, main thread')!;
    expect(main.value).toBeCloseTo((usage.seconds['main thread']! * 1e6) / 1_000, 6);
    expect(main.unit).toMatch(/^µs\/event \(\d\.\d\d of a core\)$/);
    // The thread is part of the process: cores busy counts the process once.
    const busy = rows.find((r) => r.metric === '(x) cores busy (measured processes)')!;
    expect(busy.value).toBeCloseTo(usage.seconds.process! / usage.wallSeconds, 6);
  });

  it('reports a process it cannot read as not measured, not as zero', () => {
    const usage = new CpuMeter([{ name: 'remote broker', pid: undefined }]).stop();
    expect(usage.seconds['remote broker']).toBeUndefined();
    const [row] = cpuRows('(y)', usage, 10, 'request');
    expect(row!.value).toBeNaN();
    expect(row!.unit).toMatch(/not measured/);
  });

  it('reads another process (a child that spins)', async () => {
    const child = spawn(process.execPath, ['-e', 'const t = Date.now() + 400; while (Date.now() < t) Math.sqrt(Math.random()); setTimeout(() => {}, 2000)']);
    try {
      const meter = new CpuMeter([{ name: 'child', pid: child.pid }]);
      await new Promise((r) => setTimeout(r, 700));
      const usage = meter.stop();
      expect(usage.seconds.child).toBeGreaterThan(0.1);
    } finally {
      child.kill();
    }
  });
});
