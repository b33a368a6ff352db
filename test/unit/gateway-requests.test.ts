import { describe, expect, it } from 'vitest';
import { HttpProblem } from '../../gateway/http.js';
import { parseAvailabilityBody, parseLocationStatus, parseSkuQuery, parseSkusBody, plpSkusMax } from '../../gateway/requests.js';

function detail(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HttpProblem);
    expect((e as HttpProblem).status).toBe(400);
    return (e as HttpProblem).detail;
  }
  throw new Error('expected a 400');
}

const paris = { lat: 48.85, lon: 2.35 };

describe('availability request', () => {
  it('merges lines of the same SKU and defaults methods to both', () => {
    const body = parseAvailabilityBody({ channel: 'web', lines: [{ sku: 'A', qty: 1 }, { sku: 'B', qty: 2 }, { sku: 'A', qty: 3 }], destination: paris, pickup: { near: paris, radiusKm: 20 } });
    expect(body.lines).toEqual([{ sku: 'A', qty: 4 }, { sku: 'B', qty: 2 }]);
    expect(body.methods).toEqual(['delivery', 'pickup']);
    expect(body.pickup).toEqual({ near: paris, radiusKm: 20 });
  });

  it('names the field and the value of every mistake', () => {
    expect(detail(() => parseAvailabilityBody([]))).toContain('expected a JSON object');
    expect(detail(() => parseAvailabilityBody({ lines: [{ sku: 'A', qty: 1 }], destination: paris }))).toContain('channel is missing');
    expect(detail(() => parseAvailabilityBody({ channel: 'web', lines: [] , destination: paris}))).toContain('lines is []');
    expect(detail(() => parseAvailabilityBody({ channel: 'web', lines: [{ sku: 'A', qty: 1.5 }], destination: paris }))).toContain('lines[0].qty is 1.5');
    expect(detail(() => parseAvailabilityBody({ channel: 'web', lines: [{ sku: 'A', qty: '2' }], destination: paris }))).toContain('lines[0].qty is "2"');
    expect(detail(() => parseAvailabilityBody({ channel: 'web', lines: Array.from({ length: 101 }, (_, i) => ({ sku: `S${i}`, qty: 1 })), destination: paris }))).toContain('at most 100');
    expect(detail(() => parseAvailabilityBody({ channel: 'web', lines: [{ sku: 'A', qty: 1 }], destination: { lat: 91, lon: 0 } }))).toContain('destination.lat is 91');
    expect(detail(() => parseAvailabilityBody({ channel: 'web', lines: [{ sku: 'A', qty: 1 }], methods: ['drone'], destination: paris }))).toContain('methods');
    expect(detail(() => parseAvailabilityBody({ channel: 'web', lines: [{ sku: 'A', qty: 1 }] }))).toContain('destination');
    expect(detail(() => parseAvailabilityBody({ channel: 'web', lines: [{ sku: 'A', qty: 1 }], methods: ['pickup'] }))).toContain('pickup');
  });
});

describe('PLP, PDP and admin requests', () => {
  it('bounds PLP SKUs and dedupes them', () => {
    expect(parseSkusBody({ channel: 'web', skus: ['A', 'A', 'B'] }).skus).toEqual(['A', 'B']);
    expect(detail(() => parseSkusBody({ channel: 'web', skus: Array.from({ length: plpSkusMax + 1 }, (_, i) => `S${i}`) }))).toContain(`at most ${plpSkusMax}`);
  });

  it('needs a channel on PDP and checks lat/lon', () => {
    expect(parseSkuQuery('A', new Map([['channel', 'web'], ['lat', '48.8'], ['lon', '2.3']]))).toEqual({ sku: 'A', channel: 'web', near: { lat: 48.8, lon: 2.3 } });
    expect(detail(() => parseSkuQuery('A', new Map()))).toContain('"channel" is missing');
    expect(detail(() => parseSkuQuery('A', new Map([['channel', 'web'], ['lat', 'x'], ['lon', '2']])))).toContain('lat/lon.lat');
  });

  it('accepts only active or paused as a location status', () => {
    expect(parseLocationStatus({ status: 'paused' })).toBe('paused');
    expect(detail(() => parseLocationStatus({ status: 'closed' }))).toContain('"closed"');
  });
});
