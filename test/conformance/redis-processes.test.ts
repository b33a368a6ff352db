// Redis stores under several client processes: racing holds from separate processes, and a client
// killed with SIGKILL in the middle of multi-slot basket holds.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../config/paths.js';
import { RedisStore } from '../../engine/store/redis-store.js';
import type { StockEvent } from '../../engine/store/types.js';
import { redisClusterNodes, redisUrl, requireService } from '../support/services.js';

const redisUp = await requireService('redis');
const clusterUp = await requireService('redis-cluster');
const client = projectPath('dist', 'benchmarks', 'hold-client.js');
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

function startClient(options: Record<string, unknown>, onLine: (line: Record<string, unknown>) => void): Promise<number | null> {
  const child = spawn(process.execPath, [client, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  createInterface({ input: child.stdout! }).on('line', (line) => onLine(JSON.parse(line) as Record<string, unknown>));
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

const snapshot = (sku: string, qty: number): StockEvent => ({ type: 'snapshot', eventId: randomUUID(), sku, location: 'dc', qty, asOf: Date.now() - 1000 });

describe.skipIf(!redisUp)('Redis standalone, several processes', () => {
  it('1,000 holds from four processes racing for 100 units take exactly 100', async () => {
    const keyPrefix = `mp${randomUUID().slice(0, 8)}`;
    const store = RedisStore.connect({ url: redisUrl }, { keyPrefix });
    await store.applyEvents([snapshot('hot', 100)]);
    const summaries: Record<string, unknown>[] = [];
    const exits = await Promise.all(
      [0, 1, 2, 3].map((p) =>
        startClient({ redisUrl, keyPrefix, idPrefix: `p${p}`, skus: ['hot'], location: 'dc', linesPerBasket: 1, qty: 1, baskets: 250, concurrency: 25, holdTtlMs: 60_000 }, (line) => {
          if (line.done) summaries.push(line);
        }),
      ),
    );
    expect(exits).toEqual([0, 0, 0, 0]);
    expect(summaries.reduce((n, s) => n + Number(s.held), 0)).toBe(100);
    expect(summaries.reduce((n, s) => n + Number(s.rejected), 0)).toBe(900);
    expect(await store.positions('hot', Date.now())).toEqual([{ sku: 'hot', location: 'dc', onHand: 100, reserved: 100, version: expect.any(Number) }]);
    await store.close();
  });
});

describe.skipIf(!clusterUp)('Redis Cluster, client killed mid-basket', () => {
  it('after the TTL, every unit held by a SIGKILLed client is available again', async () => {
    const keyPrefix = `crash${randomUUID().slice(0, 8)}`;
    const store = RedisStore.connect({ clusterNodes: redisClusterNodes }, { keyPrefix });
    const skus = Array.from({ length: 12 }, (_, i) => `crash-sku-${i}`);
    await store.applyEvents(skus.map((s) => snapshot(s, 1_000)));
    const holdTtlMs = 3_000;
    let progress = 0;
    let killedAt = 0;
    const exit = startClient(
      { clusterNodes: redisClusterNodes, keyPrefix, idPrefix: 'c', skus, location: 'dc', linesPerBasket: 4, qty: 1, baskets: 100_000, concurrency: 32, holdTtlMs },
      (line) => {
        progress = Number(line.progress ?? progress);
      },
    );
    while (progress < 200) await new Promise((r) => setTimeout(r, 20));
    const child = children.at(-1)!;
    child.kill('SIGKILL');
    killedAt = Date.now();
    await exit;
    const during = (await Promise.all(skus.map((s) => store.positions(s, Date.now())))).flat();
    // The client died with baskets in flight: units are still held right after the kill.
    expect(during.reduce((n, p) => n + p.reserved, 0)).toBeGreaterThan(0);
    // The latest hold was placed before the kill, so every hold expires by killedAt + TTL.
    const after = killedAt + holdTtlMs + 1;
    while (Date.now() < after) await new Promise((r) => setTimeout(r, 100));
    const positions = (await Promise.all(skus.map((s) => store.positions(s, Date.now())))).flat();
    expect(positions.map((p) => [p.sku, p.onHand, p.reserved])).toEqual(skus.map((s) => [s, 1_000, 0]));
    // The sweeper closes every header, pending ones included, and nothing stays held.
    await store.expireDue(Date.now(), 100_000);
    await store.close();
  });
});
