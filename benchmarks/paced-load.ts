// Open-loop load at a fixed rate: requests are sent on a schedule (one every 1/rate s, spread over
// keep-alive connections), whatever the server's answers, and each latency runs from the request's
// scheduled time to the end of its answer, so time a request spent waiting for a free connection
// counts (no coordinated omission).
//
// Why not autocannon's `overallRate`: it gives each connection a quota per second and lets it send
// back to back until the quota is spent, then idle until the next second. "70 % of max" then means
// full load for 0.7 s and nothing for 0.3 s, and p99 is the p99 at max throughput. Its latency
// correction also assumes a 1 ms interval between requests of a connection, which adds synthetic
// samples to every answer slower than 1 ms.
//
// The first `warmupSec` (1 s by default) run at the same rate but are not recorded: they open the
// connections and compile the client's code (a cold start measured here cost up to 160 ms).

import { Agent, request } from 'node:http';
import { percentile } from './report.js';

export interface PacedResult {
  requestsPerSec: number;
  latencyMs: { p50: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  /** Requests still unanswered when the run ended (counted as errors). */
  unanswered: number;
}

export async function pacedLoad(options: { port: number; path: string; headers: Record<string, string>; bodies: string[]; rate: number; durationSec: number; connections: number; warmupSec?: number }): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const warmup = Math.round(options.rate * (options.warmupSec ?? 1));
  const total = warmup + Math.round(options.rate * options.durationSec);
  const latencies = new Float64Array(total);
  let recorded = 0;
  const intervalMs = 1000 / options.rate;
  let sent = 0;
  let answered = 0;
  let non2xx = 0;
  let errors = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const finishAt = t0 + total * intervalMs + 10_000;
    const done = () => answered + errors >= total;
    const send = (scheduledAt: number, body: string, record: boolean) => {
      const req = request({ agent, host: '127.0.0.1', port: options.port, method: 'POST', path: options.path, headers: { ...options.headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => {
          if (record) latencies[recorded++] = performance.now() - scheduledAt;
          if (record && (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299)) non2xx += 1;
          answered += 1;
          if (done()) resolve();
        });
      });
      req.on('error', () => {
        errors += 1;
        if (done()) resolve();
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      // Every request whose time has come, each stamped with its own scheduled time.
      while (sent < total && t0 + sent * intervalMs <= now) {
        send(t0 + sent * intervalMs, options.bodies[sent % options.bodies.length]!, sent >= warmup);
        sent += 1;
      }
      if (sent < total) setTimeout(tick, Math.max(0, Math.min(1, t0 + sent * intervalMs - performance.now())));
      else if (now > finishAt) resolve();
      else if (!done()) setTimeout(tick, 50);
    };
    tick();
  });
  const elapsedSec = (performance.now() - t0) / 1000;
  agent.destroy();
  const unanswered = total - answered - errors;
  const sorted = latencies.subarray(0, recorded).sort();
  const at = (p: number) => Math.round(percentile(sorted, p) * 100) / 100;
  return {
    requestsPerSec: answered / elapsedSec,
    latencyMs: { p50: at(0.5), p99: at(0.99), max: at(1) },
    non2xx,
    errors: errors + unanswered,
    unanswered,
  };
}
