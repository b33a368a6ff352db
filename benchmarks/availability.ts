// `npm run bench -- availability [--quick]`: 12-line baskets with delivery and pickup options over
// the sample network, under concurrency, against the embedded (in-memory) store and against
// Redis, next to a fixed-response uWebSockets.js endpoint answering a body of the same size,
// all measured in the same run with the same load generator (autocannon).
//
//   max throughput (req/s)          vs the fixed-response endpoint         target >= 25 %
//                                   (3 rounds of 5 s alternating with it, after 2 s of each
//                                   unrecorded: the median of the rounds' ratios)
//   p99 latency at 70 % of max      (requests paced evenly, paced-load.ts)  target < 10 ms
//                                   next to the same paced load on the fixed-response endpoint
//
// Each server is its own process (`instock start` on the in-memory store with GATEWAY_THREADS=1
// and =2, `instock start` on Redis with GATEWAY_THREADS=1, `instock gateway` with
// GATEWAY_THREADS=2 on the same Redis, or benchmarks/fixed-server.ts; the default, `auto`, is 2 on
// a 2-core machine), so the load generator and the server do not share an event loop; one runs at
// a time. Redis is the benchmark's own redis-server.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { projectPath } from '../config/paths.js';
import { sampleSku } from '../engine/network/sample.js';
import { startBenchRedis } from './bench-redis.js';
import { addUsage, CpuMeter, cpuRows, type CpuUsage } from './cpu.js';
import { pacedLoad } from './paced-load.js';
import { printTable, progress, sideBySide, writeResults, type Row } from './report.js';

const apiKey = 'bench-key-0123456789abcdef';
const cities = [
  { lat: 48.8566, lon: 2.3522 },
  { lat: 45.764, lon: 4.8357 },
  { lat: 43.2965, lon: 5.3698 },
  { lat: 44.8378, lon: -0.5792 },
  { lat: 50.6292, lon: 3.0573 },
  { lat: 47.2184, lon: -1.5536 },
  { lat: 48.5734, lon: 7.7521 },
  { lat: 43.6047, lon: 1.4442 },
];

/** Distinct 12-line baskets; the load cycles through them. SKUs from the best-stocked part of the sample. */
function baskets(count: number): string[] {
  return Array.from({ length: count }, (_, b) => {
    const city = cities[b % cities.length]!;
    const lines = Array.from({ length: 12 }, (_, i) => ({ sku: sampleSku(1 + ((b * 12 + i * 7) % 200)), qty: 1 + ((b + i) % 2) }));
    return JSON.stringify({ channel: 'web', lines, destination: city, pickup: { near: city, radiusKm: 50, max: 5 } });
  });
}

interface Server {
  child: ChildProcess;
  port: number;
}

function spawnServer(args: string[], env: Record<string, string>, readyPattern: RegExp): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server ${args.join(' ')} not ready in 120 s:\n${out}`)), 120_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = readyPattern.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]) });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server ${args.join(' ')} exited with ${code}:\n${out}`));
    });
  });
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

interface Load {
  requestsPerSec: number;
  requests: number;
  latencyMs: { p50: number; p99: number; max: number };
  non2xx: number;
  errors: number;
}

/** Closed-loop load at full speed (autocannon): each connection sends its next request on each answer. */
async function load(port: number, bodies: string[], options: { connections: number; durationSec: number }): Promise<Load> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: options.connections,
    duration: options.durationSec,
    requests: bodies.map((body) => ({ method: 'POST' as const, path: '/v1/availability', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, body })),
  });
  return {
    requestsPerSec: result.requests.average,
    requests: result.requests.total,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

async function responseBytes(port: number, body: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/v1/availability`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, body });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`availability answered ${response.status}: ${text}`);
  const parsed = JSON.parse(text) as { options: unknown[] };
  if (parsed.options.length === 0) throw new Error('the benchmark basket got no options: the sample stock is not loaded');
  return Buffer.byteLength(text);
}

export async function benchAvailability(args: { quick: boolean; dataDir: string }): Promise<Row[]> {
  // Paced runs: one ~60 ms stall of the shared machine leaves ~150 ms of backlog at 70 % load, 1.3 %
  // of a 15 s run's requests (its p99 alone), 0.7 % of a 30 s run's.
  const durationSec = args.quick ? 3 : 30;
  const rounds = args.quick ? 1 : 3;
  const roundSec = args.quick ? 3 : 5;
  const warmupSec = 2;
  const connections = 32;
  const bodies = baskets(64);
  const redisPort = 16_391;
  const redisServer = await startBenchRedis(args.dataDir, 'bench-redis-availability', redisPort, ['--appendonly', 'no']);
  const dataDir = mkdtempSync(join(tmpdir(), 'instock-bench-data-'));
  const servers: Server[] = [];
  const rows: Row[] = [];
  const results: Record<string, unknown> = {};
  try {
    const bin = projectPath('bin', 'instock.js');
    const common = { GATEWAY_PORT: '0', GATEWAY_API_KEYS: `bench:${apiKey}:availability:read+reservations:write+admin`, GATEWAY_RATE_LIMIT_RPS: '10000000', SAMPLE_SKUS: '5000', KAFKA_BROKERS: '', CLICKHOUSE_URL: '', LOG_LEVEL: 'warn' };
    const ready = /ready in \d+ ms on http:\/\/[^:]+:(\d+)/;

    // One server runs at a time, started just before it is measured and stopped after: an idle
    // server beside the measured one still collects garbage and merges its chDB history parts on
    // the same two cores. The Redis servers share the benchmark redis-server, whose stock the first
    // of them (`instock start`) loads.
    const configs: { name: string; description: string; args: string[]; env: Record<string, string>; redis: boolean }[] = [
      { name: 'embedded, one thread', description: 'the embedded gateway on one thread (in-memory store, sample network and stock)', args: [bin, 'start'], env: { REDIS_URL: '', GATEWAY_THREADS: '1', INSTOCK_DATA_DIR: join(dataDir, 'memory') }, redis: false },
      { name: 'embedded, 2 gateway threads', description: "the embedded gateway with GATEWAY_THREADS=2 (two threads on the main thread's in-memory store)", args: [bin, 'start'], env: { REDIS_URL: '', GATEWAY_THREADS: '2', INSTOCK_DATA_DIR: join(dataDir, 'memory-threads') }, redis: false },
      { name: 'Redis, one thread', description: 'the gateway on Redis on one thread (sample stock loaded into the benchmark redis-server)', args: [bin, 'start'], env: { REDIS_URL: `redis://127.0.0.1:${redisPort}`, GATEWAY_THREADS: '1', INSTOCK_DATA_DIR: join(dataDir, 'redis') }, redis: true },
      { name: 'Redis, 2 gateway threads', description: '`instock gateway` on the same Redis with GATEWAY_THREADS=2', args: [bin, 'gateway'], env: { REDIS_URL: `redis://127.0.0.1:${redisPort}`, GATEWAY_THREADS: '2', INSTOCK_DATA_DIR: join(dataDir, 'threads') }, redis: true },
    ];
    const startServer = async (config: (typeof configs)[number]): Promise<Server> => {
      progress(`starting ${config.description}`);
      const server = await spawnServer(config.args, { ...common, REDIS_CLUSTER_NODES: '', ...config.env }, ready);
      servers.push(server);
      return server;
    };

    let first: Server | undefined = await startServer(configs[0]!);
    const bytes = await responseBytes(first.port, bodies[0]!);
    progress(`a 12-line answer is ${bytes} bytes; starting the fixed-response endpoint with that size`);
    const fixed = await spawnServer([projectPath('dist', 'benchmarks', 'fixed-server.js'), '0', String(bytes)], {}, /ready (\d+)/);
    servers.push(fixed);

    // The machine's speed drifts over seconds (the floor moved from 37,000 to 63,000 req/s between
    // runs of one day): each server's max is measured in rounds alternating with the floor, and the
    // median of the rounds' ratios is reported (report.ts: sideBySide).
    const loadGenerator = { name: 'load generator (autocannon)', pid: process.pid };
    const cpu: Record<string, CpuUsage> = {};
    const cpuTable: Row[] = [];
    let floorCpu: CpuUsage | undefined;
    let floorRequests = 0;

    for (const config of configs) {
      const name = config.name;
      const server = first ?? (await startServer(config));
      first = undefined;
      await responseBytes(server.port, bodies[0]!);
      progress(`${name}: max throughput, ${rounds} rounds of ${roundSec} s alternating with the fixed-response endpoint (the floor), ${connections} connections`);
      const gateway = { name: 'gateway process (all threads)', pid: server.child.pid };
      const gatewayMain = { name: 'gateway main thread', pid: server.child.pid, tid: server.child.pid };
      const metered = [loadGenerator, gateway, gatewayMain, ...(config.redis ? [{ name: 'redis-server', pid: redisServer.pid }] : [])];
      // Unrecorded first: the first seconds of a load find cold code in both servers and in the load
      // generator (a first floor round measured 39,554 req/s, the next two 64,000-69,000).
      await load(fixed.port, bodies, { connections, durationSec: warmupSec });
      await load(server.port, bodies, { connections, durationSec: warmupSec });
      const maxRuns: Load[] = [];
      const floorRuns: Load[] = [];
      let maxCpu: CpuUsage | undefined;
      const measured = await sideBySide(
        rounds,
        async () => {
          const meter = new CpuMeter([loadGenerator, { name: 'fixed-response server', pid: fixed.child.pid }]);
          const run = await load(fixed.port, bodies, { connections, durationSec: roundSec });
          if (config === configs[0]) {
            floorCpu = addUsage(floorCpu, meter.stop());
            floorRequests += run.requests;
          }
          floorRuns.push(run);
          return run.requestsPerSec;
        },
        async () => {
          const meter = new CpuMeter(metered);
          const run = await load(server.port, bodies, { connections, durationSec: roundSec });
          maxCpu = addUsage(maxCpu, meter.stop());
          maxRuns.push(run);
          return run.requestsPerSec;
        },
      );
      const median = maxRuns.reduce((best, r) => (Math.abs(r.requestsPerSec - measured.value) < Math.abs(best.requestsPerSec - measured.value) ? r : best));
      const max = { ...median, requests: maxRuns.reduce((sum, r) => sum + r.requests, 0), non2xx: maxRuns.reduce((sum, r) => sum + r.non2xx, 0), errors: maxRuns.reduce((sum, r) => sum + r.errors, 0) };
      cpu[name] = maxCpu!;
      cpuTable.push(...cpuRows(`${name} at max:`, cpu[name]!, max.requests, 'request'));
      const rate70 = measured.value * 0.7;
      progress(`${name}: ${Math.round(rate70)} req/s (70 % of max) for ${durationSec} s`);
      const paced = { path: '/v1/availability', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, bodies, rate: rate70, durationSec, connections };
      const at70 = await pacedLoad({ port: server.port, ...paced });
      // The latency floor: the same paced load, at the same rate, on the fixed-response endpoint, so
      // a tail that the machine or the load generator causes shows in both.
      progress(`floor: fixed-response endpoint at the same ${Math.round(rate70)} req/s for ${durationSec} s`);
      const floorAt70 = await pacedLoad({ port: fixed.port, ...paced });
      await stopServer(server);
      results[name] = { max, maxRounds: measured.rounds, floorRuns, at70, floorAtSameRate: floorAt70 };
      const ratio = measured.ratio;
      rows.push({ metric: `${name}: max throughput (median of ${rounds} rounds)`, value: measured.value, unit: 'req/s', floor: measured.floor, ratio, target: '>= 25 % of floor', pass: ratio >= 0.25 && max.non2xx === 0 && max.errors === 0 });
      rows.push({ metric: `${name}: max / floor in each round`, value: Number.NaN, unit: measured.rounds.map((r) => `${Math.round(r.value)}/${Math.round(r.floor)} = ${(r.ratio * 100).toFixed(0)} %`).join(', ') });
      rows.push({ metric: `${name}: p50 at 70 % of max`, value: at70.latencyMs.p50, unit: 'ms', floor: floorAt70.latencyMs.p50 });
      rows.push({ metric: `${name}: p99 at 70 % of max`, value: at70.latencyMs.p99, unit: 'ms', floor: floorAt70.latencyMs.p99, target: '< 10 ms', pass: at70.latencyMs.p99 < 10 && at70.non2xx === 0 && at70.errors === 0 });
      rows.push({ metric: `${name}: max latency at 70 % of max`, value: at70.latencyMs.max, unit: 'ms', floor: floorAt70.latencyMs.max });
      // A stall of the load generator counts in the latencies too: its own lateness tells the two apart.
      rows.push({ metric: `${name}: load generator's own lateness at 70 %, max`, value: at70.sendLateMsMax, unit: 'ms', floor: floorAt70.sendLateMsMax });
      rows.push({ metric: `${name}: p99 at max throughput (median round)`, value: max.latencyMs.p99, unit: 'ms' });
      if (max.non2xx > 0 || at70.non2xx > 0 || max.errors > 0 || at70.errors > 0) progress(`${name}: ${max.non2xx + at70.non2xx} non-2xx answers, ${max.errors + at70.errors} errors`);
    }

    rows.push(...cpuRows('floor:', floorCpu!, floorRequests, 'request'), ...cpuTable);
    printTable(`availability benchmark${args.quick ? ' (--quick)' : ''}: 12-line baskets, delivery + pickup, sample network (${bytes}-byte answers), ${connections} connections`, rows);
    const file = writeResults('availability', { quick: args.quick, connections, durationSec, rounds, roundSec, responseBytes: bytes, rows, results, cpu: { floor: floorCpu, ...cpu } });
    progress(`results written to ${file}`);
    return rows;
  } finally {
    for (const server of servers) await stopServer(server).catch(() => {});
    await redisServer.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
