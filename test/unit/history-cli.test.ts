// `instock analytics`: how it reads --since, how it prints rows, and that with a running embedded
// process (embedded.json naming a live pid) it asks that process over HTTP instead of opening
// chDB, whose directory the running process holds.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { analyticsCommand, formatRows, parseSince, runningEmbedded } from '../../cli/history.js';
import { loadConfig } from '../../config/config.js';
import { chdbPathFor, connectClickHouse } from '../../engine/history/clickhouse.js';
import { migrate } from '../../engine/history/migrations.js';
import { HistoryWriter } from '../../engine/history/writer.js';

const dir = mkdtempSync(join(tmpdir(), 'instock-history-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('instock analytics', () => {
  it('reads --since as a duration, an ISO date or ms since the epoch, and names the forms when wrong', () => {
    const now = Date.UTC(2026, 10, 23, 12);
    expect(parseSince('7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('90m', now)).toBe(now - 90 * 60_000);
    expect(parseSince('1.5h', now)).toBe(now - 5_400_000);
    expect(parseSince('2026-11-20T00:00:00Z', now)).toBe(Date.UTC(2026, 10, 20));
    expect(parseSince('1795392000000', now)).toBe(1795392000000);
    expect(() => parseSince('last week', now)).toThrow(/expected a duration \(7d, 24h, 90m\), an ISO date/);
  });

  it('prints rows as an aligned table, CSV or JSON', () => {
    const rows = [{ sku: 'SKU-1', units: 120, note: 'a, "b"' }, { sku: 'SKU-22', units: 7, note: null }];
    expect(formatRows(rows, 'table').split('\n')).toEqual(['sku     units  note', '------  -----  ------', 'SKU-1     120  a, "b"', 'SKU-22      7']);
    expect(formatRows(rows, 'csv')).toBe('sku,units,note\nSKU-1,120,"a, ""b"""\nSKU-22,7,');
    expect(JSON.parse(formatRows(rows, 'json'))).toEqual(rows);
    expect(formatRows([], 'table')).toBe('(no rows)');
  });

  it('asks the running embedded process over HTTP, with its key, when embedded.json names a live pid', async () => {
    const seen: { url: string; auth: string | undefined }[] = [];
    const server: Server = createServer((req, res) => {
      seen.push({ url: req.url!, auth: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ report: 'velocity', rows: [{ sku: 'SKU-9', units: 42 }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as { port: number };
    try {
      const dataDir = join(dir, 'running');
      rmSync(dataDir, { recursive: true, force: true });
      const config = { ...loadConfig({}), dataDir, clickhouseUrl: '' };
      // A stale file (dead pid) is ignored.
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(join(dataDir, 'embedded.json'), JSON.stringify({ url: `http://127.0.0.1:${port}`, apiKey: 'k-123', pid: 2 ** 22 + 12345 }));
      expect(runningEmbedded(dataDir)).toBeUndefined();
      writeFileSync(join(dataDir, 'embedded.json'), JSON.stringify({ url: `http://127.0.0.1:${port}`, apiKey: 'k-123', pid: process.pid }));
      expect(runningEmbedded(dataDir)?.apiKey).toBe('k-123');

      const out: string[] = [];
      const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        out.push(String(chunk));
        return true;
      });
      let code: number;
      try {
        code = await analyticsCommand(config, ['velocity', '--top', '5', '--since', '1795392000000', '--channel', 'web', '--format', 'json']);
      } finally {
        spy.mockRestore();
      }
      expect(code).toBe(0);
      expect(JSON.parse(out.join(''))).toEqual([{ sku: 'SKU-9', units: 42 }]);
      expect(seen).toEqual([{ url: '/v1/analytics/velocity?top=5&since=1795392000000&channel=web', auth: 'Bearer k-123' }]);
    } finally {
      server.close();
    }
  });

  it('opens chDB itself when no ClickHouse server is set and no embedded process runs', async () => {
    const dataDir = join(dir, 'chdb-direct');
    const config = { ...loadConfig({}), dataDir, clickhouseUrl: '', clickhouseDatabase: 'instock_cli' };
    const client = connectClickHouse({ url: '', chdbPath: chdbPathFor(dataDir), database: 'default' });
    await migrate(client, 'instock_cli');
    const writer = new HistoryWriter({ client, database: 'instock_cli' });
    const atMs = Date.now() - 60_000;
    await writer.reservationTransitions([{ reservationId: 'r1', channel: 'web', transition: 'held', atMs, lines: [{ sku: 'SKU-7', location: 'dc-1', qty: 3 }, { sku: 'SKU-8', location: 'dc-1', qty: 1 }] }]);
    await writer.close();
    await client.close();
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      expect(await analyticsCommand(config, ['velocity', '--since', '1h', '--format', 'csv'])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(out.join('').split('\n').slice(0, 3)).toEqual(['sku,units,lines,locations,channels,units_per_hour', expect.stringMatching(/^SKU-7,3,1,1,1,/), expect.stringMatching(/^SKU-8,1,1,1,1,/)]);
  });

  it('refuses an unknown report or format with what it expects', async () => {
    const config = { ...loadConfig({}), dataDir: join(dir, 'none') };
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
    try {
      expect(await analyticsCommand(config, ['fastest'])).toBe(2);
      expect(await analyticsCommand(config, ['velocity', '--format', 'xml'])).toBe(2);
      expect(await analyticsCommand(config, ['velocity', '--top', '0'])).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(err.join('')).toMatch(/expected a report \(velocity, stockouts, cover, sellthrough\)/);
    expect(err.join('')).toMatch(/--format xml: expected table, csv or json/);
    expect(err.join('')).toMatch(/--top 0: expected a positive integer/);
  });
});
