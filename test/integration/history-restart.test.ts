// `npm start`'s history wiring (cli/start-history.ts) on chDB, across a restart: the first run's
// in-process feeds write reservations, stock events and changes into history; the second run,
// started on the same data directory, knows the hot SKUs from history before any event arrives,
// with the rates the first run's tracker had.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { startHistory } from '../../cli/start-history.js';
import { loadConfig } from '../../config/config.js';
import { projectPath } from '../../config/paths.js';
import { VelocityTracker } from '../../engine/core/velocity.js';
import { chdbPathFor } from '../../engine/history/clickhouse.js';
import { seedTrackerFromHistory } from '../../engine/history/velocity-seed.js';
import { VelocityInput } from '../../engine/stream/velocity-input.js';
import { LocalFeeds } from '../../gateway/feeds.js';
import { generateHistory } from '../support/history-stream.js';

const dataDir = mkdtempSync(join(tmpdir(), 'instock-history-restart-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

let firstRunHot: string[] = [];

describe('npm start history across a restart', () => {
  it('a restarted engine knows its hot SKUs from history before consuming anything', async () => {
    const config = { ...loadConfig({}), dataDir, clickhouseUrl: '', clickhouseDatabase: 'instock_restart' };
    const nowMs = Date.now();
    const h = generateHistory({ stock: 2_000, transitions: 3_000, changes: 1_000, endMs: nowMs - 1_000, spanMs: 3_600_000, seed: 31 });

    // First run: the gateway's feeds carry reservations; the engine's tracker counts them live.
    const feeds = new LocalFeeds();
    const ran = new VelocityTracker();
    const input = new VelocityInput(ran);
    feeds.onTransitions((ts) => ts.forEach((t) => input.record(t)));
    const first = await startHistory(config, { feeds, velocity: new VelocityTracker(), registry: new Registry(), log: () => undefined });
    for (let i = 0; i < h.transitions.length; i += 100) feeds.transitions(h.transitions.slice(i, i + 100));
    feeds.changes(h.changes);
    first.writer.stockEvents(h.stock);
    await first.close();
    ran.retier(nowMs);
    const hot = ran.top(5, nowMs);
    expect(hot[0]!.ratePerMin).toBeGreaterThan(0);
    firstRunHot = hot.map((t) => t.sku);

    // Second run: a fresh tracker, seeded by start before any event.
    const restarted = new VelocityTracker();
    expect(restarted.tier(hot[0]!.sku, nowMs)).toBe('cold');
    const second = await startHistory(config, { feeds: new LocalFeeds(), velocity: restarted, registry: new Registry(), log: () => undefined });
    try {
      expect(restarted.top(5, nowMs).map((t) => t.sku)).toEqual(hot.map((t) => t.sku));
      for (const { sku, ratePerMin } of hot) {
        expect(restarted.tier(sku, nowMs)).toBe(ran.tier(sku, nowMs));
        // Minute buckets: within a few percent of the live rate (seeded a moment later: decay).
        expect(restarted.rate(sku, nowMs) / ratePerMin).toBeGreaterThan(0.95);
        expect(restarted.rate(sku, nowMs) / ratePerMin).toBeLessThan(1.03);
      }
      expect(restarted.tier(hot[0]!.sku, nowMs)).toBe('hot');
      // And the running process answers analytics from the same history.
      const velocity = await second.analytics({ report: 'velocity', top: 3, nowMs: Date.now(), sinceMs: nowMs - 2 * 3_600_000 });
      expect(velocity.length).toBe(3);
    } finally {
      await second.close();
    }
  });

  it('instock engine seeds from the chDB directory when it is free, starts cold when another process holds it, and lets go of it', async () => {
    expect(firstRunHot.length).toBe(5);
    const target = { url: '', chdbPath: chdbPathFor(dataDir), database: 'instock_restart' };
    const nowMs = Date.now();

    const cold = await seedTrackerFromHistory({ ...target, chdbPath: join(dataDir, 'none') }, new VelocityTracker(), nowMs);
    expect(cold).toMatch(/^velocity not seeded: no history yet/);

    // Another process (as `instock history` would) holds the directory: the engine starts cold.
    const holderScript = `import { connectClickHouse } from ${JSON.stringify(pathToFileURL(projectPath('dist', 'engine', 'history', 'clickhouse.js')).href)};
      const c = connectClickHouse(${JSON.stringify(target)});
      await (await c.query({ query: 'SELECT 1', format: 'JSONEachRow' })).json();
      process.stdout.write('holding\\n');
      process.stdin.resume();
      process.stdin.on('end', () => c.close().then(() => process.exit(0)));`;
    const holder = spawn(process.execPath, ['--input-type=module', '-e', holderScript], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('holding') && resolve());
        holder.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
      });
      const blocked = new VelocityTracker();
      const message = await seedTrackerFromHistory(target, blocked, nowMs);
      expect(message).toMatch(/^velocity NOT seeded from history .*starts cold/);
      expect(blocked.top(5, nowMs)).toEqual([]);
    } finally {
      holder.stdin.end();
      if (holder.exitCode === null) await once(holder, 'exit');
    }

    // Free again: seeded with the first run's best sellers, and the directory is let go at once.
    const seeded = new VelocityTracker();
    expect(await seedTrackerFromHistory(target, seeded, nowMs)).toMatch(/^velocity seeded from history .*: \d+ entries, [1-9]\d* hot/);
    expect(seeded.top(5, nowMs).map((t) => t.sku)).toEqual(firstRunHot);
    expect(seeded.tier(firstRunHot[0]!, nowMs)).toBe('hot');
    const again = await seedTrackerFromHistory(target, new VelocityTracker(), nowMs);
    expect(again).toMatch(/^velocity seeded from history/);
  });

  it('instock engine does not wait more than a few seconds for a ClickHouse server that does not answer', async () => {
    // A server that accepts connections and never answers (a ClickHouse stuck under load).
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const tracker = new VelocityTracker();
      const t0 = Date.now();
      const message = await seedTrackerFromHistory({ url, chdbPath: '', database: 'instock' }, tracker, Date.now());
      expect(Date.now() - t0).toBeLessThan(8_000);
      expect(message).toMatch(/^velocity NOT seeded from history .*no answer in 5000 ms/);
      expect(tracker.top(5, Date.now())).toEqual([]);
    } finally {
      sockets.forEach((socket) => socket.destroy());
      silent.close();
    }
  }, 20_000);
});
