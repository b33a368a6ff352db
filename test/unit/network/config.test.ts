// The network configuration file: each kind of mistake is reported with its path and the value
// found (exact messages, so a changed wording is a visible decision), every problem at once, the
// file named; JSON and YAML; a watched file reloads, survives broken and missing files, and stops
// when closed.

import { mkdtempSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadNetworkFile, NetworkConfigError, parseNetworkConfig, reloadDebounceMs, watchNetworkFile, type NetworkConfig } from '../../../engine/network/config.js';
import { sampleNetworkFile } from '../../../engine/network/sample.js';

type Raw = Record<string, unknown> & { locations: Record<string, unknown>[]; channels: Record<string, unknown>[]; carriers: Record<string, unknown>[]; transfer: Record<string, unknown> };
const sample = (): Raw => JSON.parse(readFileSync(sampleNetworkFile, 'utf8')) as Raw;

function refuse(input: unknown): NetworkConfigError {
  try {
    parseNetworkConfig(input, 'network.json');
  } catch (error) {
    expect(error).toBeInstanceOf(NetworkConfigError);
    return error as NetworkConfigError;
  }
  throw new Error('expected the configuration to be refused');
}

/** One mistake in the sample → exactly that problem. */
function only(mutate: (c: Raw) => void): string[] {
  const c = sample();
  mutate(c);
  return refuse(c).problems;
}

describe('network configuration errors name the path and the value', () => {
  it('locations', () => {
    expect(only((c) => (c.locations[3]!.cutoffLocal = '25:00'))).toEqual(['locations[3].cutoffLocal: expected "HH:MM" (00:00 to 23:59), got "25:00"']);
    expect(only((c) => (c.locations[3]!.cutoffLocal = '9:30'))).toEqual(['locations[3].cutoffLocal: expected "HH:MM" (00:00 to 23:59), got "9:30"']);
    expect(only((c) => (c.locations[0]!.processingMinutes = -5))).toEqual(['locations[0].processingMinutes: expected an integer from 0 to 10080, got -5']);
    expect(only((c) => (c.locations[2]!.lon = 200))).toEqual(['locations[2].lon: expected a number from -180 to 180, got 200']);
    expect(only((c) => (c.locations[2]!.lat = '48.8'))).toEqual(['locations[2].lat: expected a number from -90 to 90, got "48.8"']);
    expect(only((c) => (c.locations[1]!.status = 'closed'))).toEqual(['locations[1].status: expected "active" or "paused", got "closed"']);
    expect(only((c) => (c.locations[4]!.timeZone = 'Paris'))).toEqual(['locations[4].timeZone: expected an IANA time zone such as "Europe/Paris", got "Paris"']);
    expect(only((c) => (c.locations[4]!.dailyCapacityOrders = 0))).toEqual(['locations[4].dailyCapacityOrders: expected an integer from 1 to 10000000, got 0']);
    expect(only((c) => (c.locations[5]!.type = 'warehouse'))).toEqual(['locations[5].type: expected one of dc, store, dsv, 3pl, got "warehouse"']);
    expect(only((c) => (c.locations[6]!.id = 'has space'))).toEqual(expect.arrayContaining(['locations[6].id: expected an id of 1-64 letters, digits, _ . : or -, got "has space"']));
    expect(only((c) => ((c.locations[7]!.capabilities as Record<string, unknown>).pickup = 'yes'))).toEqual(['locations[7].capabilities.pickup: expected true or false, got "yes"']);
    expect(only((c) => ((c.locations[7]!.capabilities as Record<string, unknown>).ship = true))).toEqual(['locations[7].capabilities.ship: expected false for a store (a store that ships parcels sets shipFromStore), got true']);
    // The web channel still lists ST-08, which no longer exists: both problems.
    expect(only((c) => (c.locations[9]!.id = 'ST-01'))).toEqual(['locations[9].id: expected an id not already used (by locations[2]), got "ST-01"', 'channels[0].locations[9]: expected the id of a location of this file, got "ST-08"']);
  });

  it('channels', () => {
    expect(only((c) => ((c.channels[1]!.locations as string[])[1] = 'DC-LILLE'))).toEqual(['channels[1].locations[1]: expected the id of a location of this file, got "DC-LILLE"']);
    expect(only((c) => (c.channels[1]!.locations = ['DC-PARIS', 'DC-LYON', 'DC-PARIS']))).toEqual(['channels[1].locations[2]: expected a location not already listed in this channel, got "DC-PARIS"']);
    expect(only((c) => (c.channels[1]!.id = 'web'))).toEqual(['channels[1].id: expected an id not already used (by channels[0]), got "web"']);
    expect(only((c) => (c.channels[0]!.minThreshold = -1))).toEqual(['channels[0].minThreshold: expected an integer from 0 to 1000000, got -1']);
    expect(only((c) => (c.channels[1]!.atpCap = 0))).toEqual(['channels[1].atpCap: expected an integer from 1 to 1000000000, got 0']);
    expect(only((c) => ((c.channels[0]!.bufferByLocationType as Record<string, unknown>).warehouse = { units: 1 }))).toEqual(['channels[0].bufferByLocationType.warehouse: expected a location type (dc, store, dsv, 3pl), got "warehouse"']);
    expect(only((c) => ((c.channels[0]!.bufferByLocationType as Record<string, Record<string, unknown>>).store!.percent = 150))).toEqual(['channels[0].bufferByLocationType.store.percent: expected a number from 0 to 100, got 150']);
    expect(only((c) => ((c.channels[0]!.sourcing as Record<string, unknown>).pickupMaxDefault = 50))).toEqual(['channels[0].sourcing.pickupMaxDefault: expected an integer from 1 to 20, got 50']);
    expect(only((c) => ((c.channels[0]!.sourcing as Record<string, unknown>).distance = -1))).toEqual(['channels[0].sourcing.distance: expected a number from 0 to 1000, got -1']);
    expect(only((c) => ((c.channels[0]!.sourcing as Record<string, unknown>).locationPriority = { dc: 0, shop: 1 }))).toEqual(['channels[0].sourcing.locationPriority.shop: expected a location type, got "shop"']);
  });

  it('carriers and transfers', () => {
    const service = (c: Raw, carrier: number, i: number) => (c.carriers[carrier]!.services as Record<string, unknown>[])[i]!;
    expect(only((c) => (service(c, 1, 0).speed = 'overnight'))).toEqual(['carriers[1].services[0].speed: expected "standard" or "express", got "overnight"']);
    expect(only((c) => (service(c, 0, 0).costCents = 4.9))).toEqual(['carriers[0].services[0].costCents: expected an integer from 0 to 1000000, got 4.9']);
    expect(only((c) => (service(c, 1, 1).id = 'express'))).toEqual(['carriers[1].services[1].id: expected a service id not already used by carrier "citycourier", got "express"']);
    expect(only((c) => (service(c, 0, 0).transitDaysByBand = [{ maxKm: 500, days: 1 }, { maxKm: 100, days: 2 }]))).toEqual(["carriers[0].services[0].transitDaysByBand[1].maxKm: expected a distance above the previous band's 500, got 100"]);
    expect(only((c) => (service(c, 0, 0).transitDaysByBand = [{ maxKm: 150, days: 1.5 }]))).toEqual(['carriers[0].services[0].transitDaysByBand[0].days: expected an integer from 0 to 60, got 1.5']);
    expect(only((c) => (c.carriers[0]!.services = []))).toEqual(['carriers[0].services: expected at least one service, got []']);
    expect(only((c) => (c.carriers[1]!.id = 'parcelpost'))).toEqual(['carriers[1].id: expected an id not already used (by carriers[0]), got "parcelpost"']);
    expect(only((c) => (c.transfer.transitDaysByBand = []))).toEqual(['transfer.transitDaysByBand: expected at least one distance band, got []']);
  });

  it('the top level', () => {
    expect(only((c) => (c.timeZone = 'Mars/Olympus'))).toEqual(['timeZone: expected an IANA time zone such as "Europe/Paris", got "Mars/Olympus"']);
    expect(only((c) => delete (c as Record<string, unknown>).locations)).toEqual(expect.arrayContaining(['locations: expected a list, got nothing']));
    expect(only((c) => (c.channels = []))).toEqual(['channels: expected at least one channel, got []']);
    expect(refuse([]).problems[0]).toBe('(top level): expected an object, got []');
  });

  it('lists every problem at once in the message, with the source', () => {
    const c = sample();
    c.locations[0]!.cutoffLocal = '24:00';
    c.locations[1]!.lat = 91;
    c.channels[0]!.minThreshold = 1.5;
    const error = refuse(c);
    expect(error.source).toBe('network.json');
    expect(error.message).toBe(
      'network configuration network.json is invalid (3 problems):\n' +
        '  locations[0].cutoffLocal: expected "HH:MM" (00:00 to 23:59), got "24:00"\n' +
        '  locations[1].lat: expected a number from -90 to 90, got 91\n' +
        '  channels[0].minThreshold: expected an integer from 0 to 1000000, got 1.5',
    );
  });

  it('fills documented defaults: status active, network time zone, version, sourcing weights', () => {
    const n = parseNetworkConfig(
      {
        timeZone: 'Europe/Paris',
        locations: [{ id: 'S1', type: 'store', lat: 48.85, lon: 2.35, capabilities: { pickup: true }, processingMinutes: 30, cutoffLocal: '18:00' }],
        channels: [{ id: 'web', locations: ['S1'] }],
      },
      'inline',
    );
    expect(n.version).toBe('1');
    expect(n.locations[0]).toEqual({ id: 'S1', name: 'S1', type: 'store', lat: 48.85, lon: 2.35, capabilities: { ship: false, pickup: true, shipFromStore: false }, processingMinutes: 30, cutoffLocal: '18:00', timeZone: 'Europe/Paris', status: 'active' });
    expect(n.channels[0]!.sourcing).toEqual({ distance: 1, shipments: 10, cost: 1, priority: 5, depth: 1, locationPriority: { dc: 0, '3pl': 0, dsv: 1, store: 2 }, expressMaxKm: 30, pickupRadiusKmDefault: 25, pickupMaxDefault: 3 });
    expect(n.carriers).toEqual([]);
  });
});

describe('network files', () => {
  it('reads JSON and YAML by extension and names the file when it cannot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'instock-network-'));
    writeFileSync(join(dir, 'n.yml'), stringify(sample()));
    expect(loadNetworkFile(join(dir, 'n.yml')).locations.map((l) => l.id).slice(0, 3)).toEqual(['DC-PARIS', 'DC-LYON', 'ST-01']);
    writeFileSync(join(dir, 'bad.yaml'), 'locations: [unclosed');
    expect(() => loadNetworkFile(join(dir, 'bad.yaml'))).toThrow(/^network configuration .*bad\.yaml is invalid \(1 problem\):\n {2}not valid YAML/);
    const c = sample();
    c.locations[0]!.lat = 100;
    writeFileSync(join(dir, 'wrong.yaml'), stringify(c));
    expect(() => loadNetworkFile(join(dir, 'wrong.yaml'))).toThrow(/wrong\.yaml is invalid \(1 problem\):\n {2}locations\[0\]\.lat: expected a number from -90 to 90, got 100$/);
  });
});

describe('watching the network file', () => {
  const until = async (what: string, ok: () => boolean, timeoutMs = 5_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const settle = () => new Promise((r) => setTimeout(r, reloadDebounceMs * 3));

  it('reloads once per burst of writes, keeps the last good configuration through broken and missing files, and stops when closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'instock-network-'));
    const file = join(dir, 'network.yaml');
    const config = sample();
    writeFileSync(file, stringify(config));
    const reloads: NetworkConfig[] = [];
    const errors: Error[] = [];
    const watcher = watchNetworkFile(file, (n) => reloads.push(n), (e) => errors.push(e));
    try {
      // An editor saving in several writes: one reload, with the final content.
      for (const status of ['paused', 'active', 'paused']) {
        config.locations[2]!.status = status;
        writeFileSync(file, stringify(config));
      }
      await until('a reload', () => reloads.length === 1);
      await settle();
      expect(reloads).toHaveLength(1);
      expect(reloads[0]!.locations[2]).toMatchObject({ id: 'ST-01', status: 'paused' });

      // A broken file: an error naming the file and the problem, no reload.
      config.locations[2]!.cutoffLocal = '18h';
      writeFileSync(file, stringify(config));
      await until('an error', () => errors.length === 1);
      expect(errors[0]!.message).toContain(file);
      expect(errors[0]!.message).toContain('locations[2].cutoffLocal: expected "HH:MM" (00:00 to 23:59), got "18h"');

      // Deleted, then written again under the same name: followed.
      unlinkSync(file);
      await until('an error for the missing file', () => errors.length === 2);
      expect(errors[1]!.message).toContain('cannot read the file');
      config.locations[2]!.cutoffLocal = '19:30';
      writeFileSync(join(dir, 'tmp.yaml'), stringify(config));
      renameSync(join(dir, 'tmp.yaml'), file);
      await until('a second reload', () => reloads.length === 2);
      expect(reloads[1]!.locations[2]).toMatchObject({ cutoffLocal: '19:30', status: 'paused' });

      // Another file in the folder changes nothing.
      writeFileSync(join(dir, 'other.json'), '{}');
      await settle();
      expect([reloads.length, errors.length]).toEqual([2, 2]);
    } finally {
      watcher.close();
    }
    config.locations[2]!.status = 'active';
    writeFileSync(file, stringify(config));
    await settle();
    expect([reloads.length, errors.length]).toEqual([2, 2]);
  });
});
