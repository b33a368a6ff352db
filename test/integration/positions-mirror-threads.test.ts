// The copy of the positions in shared memory (gateway/positions-mirror.ts) read by a real thread
// while the main thread writes it: every write sets all 40 positions of a SKU to the same onHand
// and reserved, so a read that mixed two writes shows two values. The thread runs the compiled
// reader (dist/, built by `npm test`), as a gateway thread does.

import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../engine/store/memory-store.js';
import type { StockEvent } from '../../engine/store/types.js';
import { PositionsMirror } from '../../gateway/positions-mirror.js';

const readerModule = new URL('../../dist/gateway/positions-mirror.js', import.meta.url).href;

/** Reads the SKU until told to stop; counts reads that were whole, mixed, or left to the main thread. */
const readerSource = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const { MirrorReader } = await import(workerData.module);
  const reader = new MirrorReader();
  reader.learn(workerData.update, [workerData.sku], [workerData.number]);
  const byNumber = reader.columnsFor(new Map(workerData.locations.map((id, i) => [id, i])));
  const stop = new Int32Array(workerData.stop);
  let whole = 0, mixed = 0, asked = 0, columns = 0;
  parentPort.postMessage({ type: 'reading' });
  while (Atomics.load(stop, 0) === 0) {
    const onHands = [], reserveds = [];
    const ok = reader.read(workerData.sku, 0, Date.now(), byNumber, (line, column, onHand, reserved) => {
      onHands.push(onHand);
      reserveds.push(reserved);
      if (column >= 0) columns += 1;
    });
    if (!ok) { asked += 1; continue; }
    if (onHands.length !== workerData.locations.length || onHands.some((v) => v !== onHands[0]) || reserveds.some((v) => v !== reserveds[0])) mixed += 1;
    else whole += 1;
  }
  parentPort.postMessage({ type: 'done', whole, mixed, asked, columns });
})();
`;

describe('positions copy in shared memory, read by a thread while the main thread writes', () => {
  it('never shows a read that mixes two writes', async () => {
    const store = new MemoryStore();
    const locations = Array.from({ length: 40 }, (_, i) => `L${String(i).padStart(2, '0')}`);
    const sku = 'SKU-SEQ';
    const write = (k: number) => store.applyEvents(locations.map((location): StockEvent => ({ eventId: `e${k}-${location}`, type: 'snapshot', sku, location, qty: k, asOf: k, source: 'test' })), 0);
    await write(1);
    const mirror = new PositionsMirror(store);
    const stop = new SharedArrayBuffer(4);
    const worker = new Worker(readerSource, { eval: true, workerData: { module: readerModule, update: mirror.update({ names: 0, headers: 0, segments: 0 }), sku, number: mirror.skuNumber(sku), locations, stop } });
    const messages: { type: string; whole?: number; mixed?: number; asked?: number; columns?: number }[] = [];
    const done = new Promise<{ whole: number; mixed: number; asked: number; columns: number }>((resolve, reject) => {
      worker.on('message', (message: (typeof messages)[number]) => {
        messages.push(message);
        if (message.type === 'done') resolve(message as { whole: number; mixed: number; asked: number; columns: number });
      });
      worker.on('error', reject);
    });
    await new Promise<void>((resolve) => worker.once('message', () => resolve()));
    // Writes for at most 3 s or 30,000 writes, each 40 positions at once (a hold's reserved moves them too).
    const t0 = Date.now();
    let k = 2;
    while (k < 30_000 && Date.now() - t0 < 3_000) {
      await write(k);
      if (k % 3 === 0) await store.hold({ reservationId: `r${k}`, channel: 'web', lines: locations.map((location) => ({ sku, location, qty: 1, rule: { sellable: true, bufferUnits: 0, bufferPercent: 0, minThreshold: 0 } })), holdTtlMs: 86_400_000, nowMs: Date.now() });
      if (k % 3 === 1) await store.transition(`r${k - 1}`, 'release', Date.now());
      k += 1;
    }
    Atomics.store(new Int32Array(stop), 0, 1);
    const result = await done;
    await worker.terminate();
    expect(result.mixed).toBe(0);
    expect(result.whole).toBeGreaterThan(1_000);
    // Every position of a whole read maps to the reader's columns.
    expect(result.columns).toBe(result.whole * locations.length);
  }, 20_000);
});
