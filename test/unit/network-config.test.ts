// The network configuration file: every kind of mistake is reported with its path and value, the
// sample validates, YAML works, and a watched file reloads (a broken one keeps the last good one).

import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadNetworkFile, NetworkConfigError, parseNetworkConfig, watchNetworkFile, type NetworkConfig } from '../../engine/network/config.js';
import { sampleNetwork, sampleNetworkFile, sampleSku, sampleStockEvents } from '../../engine/network/sample.js';

const base = () => JSON.parse(readFileSync(sampleNetworkFile, 'utf8')) as Record<string, unknown> & { locations: Record<string, unknown>[]; channels: Record<string, unknown>[]; carriers: Record<string, unknown>[] };

function problems(input: unknown): string[] {
  try {
    parseNetworkConfig(input, 'test');
  } catch (error) {
    expect(error).toBeInstanceOf(NetworkConfigError);
    return (error as NetworkConfigError).problems;
  }
  throw new Error('expected the configuration to be refused');
}

describe('network configuration', () => {
  it('ships a sample of 2 DCs, 40 stores, 2 channels and 2 carriers that validates', () => {
    const n = sampleNetwork();
    expect(n.locations.filter((l) => l.type === 'dc')).toHaveLength(2);
    expect(n.locations.filter((l) => l.type === 'store')).toHaveLength(40);
    expect(n.channels.map((c) => c.id)).toEqual(['web', 'marketplace']);
    expect(n.carriers).toHaveLength(2);
    expect(n.locations.every((l) => l.timeZone === 'Europe/Paris')).toBe(true);
  });

  it('generates the same sample stock every time, best sellers everywhere', () => {
    const n = sampleNetwork();
    const a = sampleStockEvents(n, { skus: 300, asOfMs: 1 });
    expect(sampleStockEvents(n, { skus: 300, asOfMs: 1 })).toEqual(a);
    const first = a.filter((e) => e.sku === sampleSku(1));
    expect(first).toHaveLength(42);
    expect(new Set(a.map((e) => e.eventId)).size).toBe(a.length);
    expect(a.every((e) => e.type === 'snapshot' && e.qty >= 0)).toBe(true);
  });

  it('names the path and the value of every mistake, all at once', () => {
    const c = base();
    c.locations[0]!.cutoffLocal = '25:00';
    c.locations[1]!.type = 'warehouse';
    c.locations[2]!.lat = 123;
    c.locations[3]!.id = c.locations[4]!.id;
    (c.locations[5]!.capabilities as Record<string, unknown>).ship = true;
    c.channels[0]!.locations = ['DC-PARIS', 'NOWHERE'];
    c.channels[1]!.minThreshold = -1;
    ((c.carriers[0]!.services as Record<string, unknown>[])[0]!.transitDaysByBand as unknown[]) = [{ maxKm: 500, days: 1 }, { maxKm: 100, days: 2 }];
    c.timeZone = 'Mars/Olympus';
    const found = problems(c);
    const expectOne = (re: RegExp) => expect(found.some((p) => re.test(p)), `${re} in\n${found.join('\n')}`).toBe(true);
    expectOne(/^locations\[0\]\.cutoffLocal: expected "HH:MM".*got "25:00"/);
    expectOne(/^locations\[1\]\.type: expected one of dc, store, dsv, 3pl, got "warehouse"/);
    expectOne(/^locations\[2\]\.lat: expected a number from -90 to 90, got 123/);
    expectOne(/^locations\[4\]\.id: expected an id not already used \(by locations\[3\]\)/);
    expectOne(/^locations\[5\]\.capabilities\.ship: expected false for a store/);
    expectOne(/^channels\[0\]\.locations\[1\]: expected the id of a location of this file, got "NOWHERE"/);
    expectOne(/^channels\[1\]\.minThreshold: expected an integer from 0/);
    expectOne(/^carriers\[0\]\.services\[0\]\.transitDaysByBand\[1\]\.maxKm: expected a distance above the previous band's 500, got 100/);
    expectOne(/^timeZone: expected an IANA time zone/);
  });

  it('reads YAML and JSON files and names the file when it cannot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'instock-network-'));
    writeFileSync(join(dir, 'n.yaml'), stringify(base()));
    expect(loadNetworkFile(join(dir, 'n.yaml')).locations).toHaveLength(42);
    writeFileSync(join(dir, 'bad.json'), '{"locations": [');
    expect(() => loadNetworkFile(join(dir, 'bad.json'))).toThrow(/bad\.json.*not valid JSON/s);
    expect(() => loadNetworkFile(join(dir, 'missing.json'))).toThrow(/missing\.json.*cannot read/s);
  });

  it('reloads a watched file when it changes, and keeps the last good configuration when the new one is broken', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'instock-network-'));
    const file = join(dir, 'network.json');
    const config = base();
    writeFileSync(file, JSON.stringify(config));
    const reloads: NetworkConfig[] = [];
    const errors: Error[] = [];
    const watcher = watchNetworkFile(file, (n) => reloads.push(n), (e) => errors.push(e));
    const until = async (what: string, ok: () => boolean) => {
      const deadline = Date.now() + 5_000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      config.locations[0]!.status = 'paused';
      writeFileSync(file, JSON.stringify(config));
      await until('a reload', () => reloads.length === 1);
      expect(reloads[0]!.locations[0]!.status).toBe('paused');
      writeFileSync(file, '{"broken":');
      await until('an error', () => errors.length === 1);
      expect(errors[0]!.message).toContain('not valid JSON');
      expect(reloads).toHaveLength(1);
      // Editors often replace the file (write elsewhere, rename over it): still watched.
      config.locations[0]!.status = 'active';
      writeFileSync(join(dir, 'tmp.json'), JSON.stringify(config));
      renameSync(join(dir, 'tmp.json'), file);
      await until('a second reload', () => reloads.length === 2);
      expect(reloads[1]!.locations[0]!.status).toBe('active');
    } finally {
      watcher.close();
    }
  });
});
