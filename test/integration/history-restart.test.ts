// `npm start`'s history wiring (cli/start-history.ts) on chDB, across a restart: the first run's
// in-process feeds write reservations, stock events and changes into history; the second run,
// started on the same data directory, knows the hot SKUs from history before any event arrives,
// with the rates the first run's tracker had.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { startHistory } from '../../cli/start-history.js';
import { loadConfig } from '../../config/config.js';
import { VelocityTracker } from '../../engine/core/velocity.js';
import { VelocityInput } from '../../engine/stream/velocity-input.js';
import { LocalFeeds } from '../../gateway/feeds.js';
import { generateHistory } from '../support/history-stream.js';

const dataDir = mkdtempSync(join(tmpdir(), 'instock-history-restart-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

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
});
