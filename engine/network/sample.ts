// The shipped sample: a French network (2 DCs, 40 stores, 2 channels, 2 carriers; the file is
// config/network.sample.json) and a deterministic catalogue of stock for it. It is what
// `npm start` serves on the embedded default and what the availability benchmark loads.

import { projectPath } from '../../config/paths.js';
import type { StockEvent } from '../core/types.js';
import { loadNetworkFile, type NetworkConfig } from './config.js';

export const sampleNetworkFile = projectPath('config', 'network.sample.json');

export function sampleNetwork(): NetworkConfig {
  return loadNetworkFile(sampleNetworkFile);
}

/** SKU-000001, SKU-000002, …: index 1 is the best seller. */
export function sampleSku(index: number): string {
  return `SKU-${String(index).padStart(6, '0')}`;
}

/** Broadly stocked best sellers: every location holds them, so a first request returns real options. */
export const sampleBroadSkus = 200;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Snapshot events for `skus` SKUs over the network's locations, with a long-tail shape: DCs hold
 * nearly every SKU in depth, stores a subset in small quantities; the first `sampleBroadSkus`
 * SKUs are at every location. The same options give the same events (ids included), so loading
 * them twice changes nothing.
 */
export function sampleStockEvents(network: NetworkConfig, options: { skus: number; seed?: number; asOfMs: number }): StockEvent[] {
  const random = mulberry32(options.seed ?? 42);
  const events: StockEvent[] = [];
  const dcs = network.locations.filter((l) => l.type !== 'store');
  const stores = network.locations.filter((l) => l.type === 'store');
  for (let i = 1; i <= options.skus; i++) {
    const sku = sampleSku(i);
    const broad = i <= sampleBroadSkus;
    // Demand falls with rank; so does the depth a DC keeps.
    const depth = Math.max(5, Math.round(2_000 / Math.sqrt(i)));
    for (const dc of dcs) {
      if (!broad && random() > 0.85) continue;
      events.push({ type: 'snapshot', eventId: `sample-${sku}-${dc.id}`, sku, location: dc.id, qty: Math.round(depth * (0.5 + random())), asOf: options.asOfMs, source: 'sample' });
    }
    for (const store of stores) {
      if (!broad && random() > 0.2) continue;
      events.push({ type: 'snapshot', eventId: `sample-${sku}-${store.id}`, sku, location: store.id, qty: 3 + Math.floor(random() * (broad ? 40 : 15)), asOf: options.asOfMs, source: 'sample' });
    }
  }
  return events;
}
