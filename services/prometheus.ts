// Local Prometheus from Debian, run with the configuration grafana/ ships. Scrape targets are
// written from the configured engine and gateway ports, so dashboards see the local processes.

import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../config/paths.js';
import { log, runningPid, startDetached, stopByPid, waitFor, type Layout } from './processes.js';

const host = '127.0.0.1';

/** The Prometheus configuration grafana/ ships (also mounted by docker-compose.yml). */
export const shippedPrometheusDir = projectPath('grafana', 'prometheus');

export interface PrometheusPorts {
  prometheus: number;
  engineMetrics: number;
  gateway: number;
}

async function ready(port: number): Promise<boolean> {
  const response = await fetch(`http://${host}:${port}/-/ready`, { signal: AbortSignal.timeout(1000) });
  return response.ok;
}

export async function prometheusUp(paths: Layout, ports: PrometheusPorts): Promise<void> {
  const t0 = Date.now();
  const dir = join(paths.root, 'prometheus');
  const configDir = join(dir, 'config');
  mkdirSync(join(dir, 'data'), { recursive: true });
  // The shipped config and rules, unchanged; only the file_sd targets are local.
  cpSync(join(shippedPrometheusDir, 'prometheus.yml'), join(configDir, 'prometheus.yml'));
  cpSync(join(shippedPrometheusDir, 'rules'), join(configDir, 'rules'), { recursive: true });
  mkdirSync(join(configDir, 'targets'), { recursive: true });
  const target = (port: number) => `- targets: ['${host}:${port}']\n`;
  writeFileSync(join(configDir, 'targets', 'engine.yml'), target(ports.engineMetrics));
  writeFileSync(join(configDir, 'targets', 'gateway.yml'), target(ports.gateway));
  writeFileSync(join(configDir, 'targets', 'prometheus.yml'), target(ports.prometheus));
  if (runningPid(paths, 'prometheus') === undefined) {
    startDetached(paths, 'prometheus', 'prometheus', [
      `--config.file=${join(configDir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${host}:${ports.prometheus}`,
      '--storage.tsdb.retention.time=2d',
      '--web.enable-lifecycle',
    ]);
  }
  await waitFor(`Prometheus on ${host}:${ports.prometheus}`, () => ready(ports.prometheus), 30_000, join(paths.logs, 'prometheus.log'));
  log(`Prometheus up on http://${host}:${ports.prometheus} in ${Date.now() - t0} ms`);
}

export async function prometheusDown(paths: Layout): Promise<boolean> {
  return stopByPid(paths, 'prometheus');
}

export async function prometheusStatus(paths: Layout, port: number): Promise<string> {
  const pid = runningPid(paths, 'prometheus');
  const answer = pid ? ((await ready(port).catch(() => false)) ? '  ready' : '  not answering') : '';
  return `prometheus       ${pid ? `pid ${pid}` : 'stopped'}  http://${host}:${port}${answer}`;
}
