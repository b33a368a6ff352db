// A small network shared by the core's unit tests: one DC, two stores, one drop-ship supplier.

import type { Channel, Location, LocationType, StockEvent } from '../../../engine/core/types.js';

export const t0Ms = 1_700_000_000_000;

export function location(id: string, type: LocationType, overrides: Partial<Location> = {}): Location {
  return {
    id,
    type,
    lat: 48.85,
    lon: 2.35,
    capabilities: { ship: type !== 'store', pickup: type === 'store', shipFromStore: false },
    processingMinutes: 60,
    cutoffLocal: '16:00',
    status: 'active',
    ...overrides,
  };
}

export const dc = location('dc-1', 'dc');
export const storeA = location('store-a', 'store');
export const storeB = location('store-b', 'store');
export const supplier = location('dsv-1', 'dsv');
export const locations: Location[] = [dc, storeA, storeB, supplier];

export function channel(overrides: Partial<Channel> = {}): Channel {
  return { id: 'web', locations: ['dc-1', 'store-a', 'store-b'], bufferByLocationType: {}, minThreshold: 0, ...overrides };
}

export const lookup = (all: Location[]) => {
  const byId = new Map(all.map((l) => [l.id, l]));
  return (id: string): Location | undefined => byId.get(id);
};

export function snapshot(eventId: string, qty: number, asOf: number, sku = 'sku-1', loc = 'dc-1'): StockEvent {
  return { type: 'snapshot', eventId, sku, location: loc, qty, asOf };
}

export function delta(eventId: string, qty: number, asOf: number, sku = 'sku-1', loc = 'dc-1'): StockEvent {
  return { type: 'delta', eventId, sku, location: loc, qty, asOf };
}
