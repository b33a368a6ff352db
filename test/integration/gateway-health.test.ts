import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../config/paths.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';

describe('gateway operational routes', () => {
  let gateway: RunningGateway;
  let base: string;
  beforeAll(async () => {
    gateway = await startGateway({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${gateway.port}`;
  });
  afterAll(() => gateway.close());

  it('answers /health and /ready', async () => {
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect((await fetch(`${base}/ready`)).status).toBe(200);
  });

  it('answers /ready 503 while its store does not answer, and 200 again once it does', async () => {
    let storeUp = false;
    const probed = await startGateway({ host: '127.0.0.1', port: 0, ready: async () => {
      if (!storeUp) throw new Error('connection refused');
      return true;
    } });
    try {
      const down = await fetch(`http://127.0.0.1:${probed.port}/ready`);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ status: 'not ready' });
      storeUp = true;
      expect((await fetch(`http://127.0.0.1:${probed.port}/ready`)).status).toBe(200);
    } finally {
      probed.close();
    }
  });

  it('exports Prometheus metrics', async () => {
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toMatch(/^process_cpu_user_seconds_total /m);
  });

  it('answers an unknown route with problem+json that names it', async () => {
    const response = await fetch(`${base}/v1/nope`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(((await response.json()) as { detail: string }).detail).toBe('no route for POST /v1/nope');
  });
});

describe('instock CLI', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [projectPath('bin', 'instock.js'), ...args], { encoding: 'utf8', env: { ...process.env, ...env } });

  it('refuses a bad setting with exit 2 and a message naming the variable', () => {
    const result = cli(['config'], { GATEWAY_PORT: 'abc' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('GATEWAY_PORT="abc" is invalid: expected an integer between 0 and 65535');
  });

  it('lists every setting with its current value', () => {
    const result = cli(['config'], { KAFKA_PARTITIONS: '12' });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/KAFKA_PARTITIONS\s+12\s+default "6"/);
  });

  it('rejects an unknown service name', () => {
    const result = cli(['services', 'status', 'mysql']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('unknown service "mysql": expected one of kafka, redis, prometheus or all');
  });
});
