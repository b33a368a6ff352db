// The availability answer's JSON writer (gateway/answer-json.ts) against JSON.stringify: the text
// must parse to the same value for every kind of answer the sourcing gives, and escape what
// JSON.stringify escapes.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { positionAtp } from '../../engine/core/atp.js';
import { availabilityOptions, type AvailabilityAnswer } from '../../engine/core/sourcing.js';
import { sampleNetwork, sampleSku, sampleStockEvents } from '../../engine/network/sample.js';
import { availabilityJson } from '../../gateway/answer-json.js';

const cities = [
  { lat: 48.8566, lon: 2.3522 },
  { lat: 45.764, lon: 4.8357 },
  { lat: 43.2965, lon: 5.3698 },
  { lat: 50.6292, lon: 3.0573 },
  { lat: 47.2184, lon: -1.5536 },
];
// Tuesday 10:00, Tuesday 16:30 (past most cut-offs), Saturday 19:00 and Sunday 03:00 in Paris.
const times = ['2026-11-24T09:00:00Z', '2026-11-24T15:30:00Z', '2026-11-28T18:00:00Z', '2026-11-29T02:00:00Z'].map(Date.parse);

function same(answer: AvailabilityAnswer): void {
  expect(JSON.parse(availabilityJson(answer))).toEqual(JSON.parse(JSON.stringify(answer)));
}

describe('availability answer JSON', () => {
  const network = sampleNetwork();
  const events = sampleStockEvents(network, { skus: 400, asOfMs: 1_000 });
  const onHand = new Map(events.map((e) => [`${e.sku}@${e.location}`, e.qty]));
  const locations = new Map(network.locations.map((l) => [l.id, l]));

  it('parses to what JSON.stringify gives, over baskets that get every option type', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const methods = new Set<string>();
    let multiShipment = 0;
    let linesWithoutDelivery = 0;
    for (let b = 0; b < 300; b++) {
      const channel = network.channels[b % 5 === 0 ? 1 : 0]!;
      const city = cities[b % cities.length]!;
      const size = 1 + Math.floor(random() * 12);
      const lines = Array.from({ length: size }, () => ({ sku: sampleSku(1 + Math.floor(random() * 400)), qty: 1 + Math.floor(random() * (b % 3 === 0 ? 40 : 3)) }));
      const atpAt = (sku: string, location: string) => {
        const qty = onHand.get(`${sku}@${location}`);
        return qty === undefined ? 0 : positionAtp({ onHand: qty, reserved: 0 }, locations.get(location), channel);
      };
      const answer = availabilityOptions(
        network,
        { channel: channel.id, lines, destination: city, ...(b % 4 === 1 ? {} : { pickup: { near: city, radiusKm: 10 + (b % 60), max: 1 + (b % 6) } }), nowMs: times[b % times.length]! },
        atpAt,
      );
      same(answer);
      for (const o of answer.options) methods.add(o.method);
      multiShipment += answer.options.filter((o) => o.shipmentCount > 1).length;
      linesWithoutDelivery += answer.lines.filter((l) => l.bestDeliveryAtMs === undefined).length;
    }
    expect([...methods].sort()).toEqual(['delivery_express', 'delivery_standard', 'pickup_after_transfer', 'pickup_in_store']);
    expect(multiShipment).toBeGreaterThan(0);
    expect(linesWithoutDelivery).toBeGreaterThan(0);
  });

  it('writes distances (one decimal, from their tenths) and any other number as JSON.stringify does', () => {
    const answerWithDistances = (distances: number[]): AvailabilityAnswer => ({
      channel: 'web',
      options: [],
      lines: [{ sku: 'S', requested: 1, atp: 1, inStock: true, pickupStores: distances.map((distanceKm, i) => ({ location: `ST-${i}`, name: 'Store', distanceKm, atp: 1 })) }],
    });
    const tenths = fc.integer({ min: 0, max: 20_000_000 }).map((n) => n / 10);
    const anyNumber = fc.oneof(fc.double({ noNaN: true }), fc.double({ min: 0, max: 1e6, noNaN: true }), fc.integer().map((n) => n / 100));
    fc.assert(
      fc.property(fc.array(fc.oneof(tenths, anyNumber), { minLength: 1, maxLength: 20 }), (distances) => {
        // Text, not just the parsed value: the same digits JSON.stringify writes.
        expect(availabilityJson(answerWithDistances(distances))).toBe(JSON.stringify(answerWithDistances(distances)));
      }),
      { numRuns: 500 },
    );
    for (const edge of [0, 0.1, 0.15, 0.05, 1e-7, 123_456.7, 99_999_999.9, 1e21, -0.1, -0]) same(answerWithDistances([edge]));
  });

  it('escapes quotes, backslashes and control characters, and writes a non-finite number as null', () => {
    const answer: AvailabilityAnswer = {
      channel: 'web',
      options: [
        {
          id: 'pickup_in_store:ST-"1"',
          rank: 1,
          method: 'pickup_in_store',
          shipmentCount: 1,
          shipments: [{ from: 'ST-"1"', lines: [{ sku: 'A\\B', qty: 1 }], readyAtMs: 1, deliverAtMs: 2 }],
          promiseAtMs: 2,
          promiseAt: new Date(2).toISOString(),
          costCents: 0,
          pickup: { location: 'ST-"1"', name: 'Store "Rivoli"\n\u0001 \u2028 é \ud800', distanceKm: Number.NaN, readyAtMs: 2 },
        },
      ],
      lines: [{ sku: 'A\\B', requested: 1, atp: Number.POSITIVE_INFINITY, inStock: true, pickupStores: [] }],
    };
    same(answer);
    expect(availabilityJson(answer)).toContain('"distanceKm":null');
  });
});
