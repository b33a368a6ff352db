// docker-compose.yml cannot run on the project's machines (no Docker engine): this test keeps it
// in agreement with the code (settings, ports) and with what grafana/ ships.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { describeSettings, loadConfig } from '../../config/config.js';
import { projectPath } from '../../config/paths.js';

interface ComposeService {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
}
const compose = parse(readFileSync(projectPath('docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;
const knownEnv = new Set(describeSettings().map((s) => s.env));

function envOf(name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(services[name]?.environment ?? {}).map(([k, v]) => [k, String(v)]));
}
function hostPortOf(value: string): { host: string; port: number } {
  const url = value.includes('://') ? new URL(value) : new URL(`tcp://${value}`);
  return { host: url.hostname, port: Number(url.port) };
}
function publishes(service: string, port: number): boolean {
  return (services[service]?.ports ?? []).some((p) => p.endsWith(`:${port}`));
}

describe('docker-compose.yml', () => {
  it('runs Kafka (KRaft), Redis, a ClickHouse server, Prometheus, Grafana, the engine and the gateway', () => {
    expect(Object.keys(services).sort()).toEqual(['clickhouse', 'engine', 'gateway', 'grafana', 'kafka', 'prometheus', 'redis']);
    expect(envOf('kafka').KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(services.redis?.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--appendfsync', 'everysec']));
  });

  it('gives the engine and the gateway only settings the code knows, and valid ones', () => {
    for (const role of ['engine', 'gateway']) {
      const env = envOf(role);
      for (const key of Object.keys(env)) expect(knownEnv, `${role} sets unknown ${key}`).toContain(key);
      expect(() => loadConfig(env)).not.toThrow();
      expect(services[role]?.command).toEqual([role]);
    }
  });

  it('points the engine and the gateway at the compose services on their real ports', () => {
    for (const role of ['engine', 'gateway']) {
      const config = loadConfig(envOf(role));
      const kafka = hostPortOf(config.kafkaBrokers[0]!);
      expect(kafka.host).toBe('kafka');
      expect(envOf('kafka').KAFKA_ADVERTISED_LISTENERS).toContain(`PLAINTEXT://kafka:${kafka.port}`);
      const redis = hostPortOf(config.redisUrl);
      expect([redis.host, redis.port]).toEqual(['redis', 6379]);
      const clickhouse = hostPortOf(config.clickhouseUrl);
      expect([clickhouse.host, clickhouse.port]).toEqual(['clickhouse', 8123]);
      expect(envOf('clickhouse').CLICKHOUSE_DB).toBe(config.clickhouseDatabase);
    }
    expect(publishes('gateway', loadConfig(envOf('gateway')).gatewayPort)).toBe(true);
    expect(publishes('engine', loadConfig(envOf('engine')).engineMetricsPort)).toBe(true);
  });

  it('has Prometheus scrape the engine and gateway metrics ports from the config grafana/ ships', () => {
    const mounts = services.prometheus?.volumes ?? [];
    for (const mount of mounts) expect(existsSync(projectPath(mount.split(':')[0]!)), mount).toBe(true);
    expect(mounts).toContain('./grafana/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    const targetsMount = mounts.find((m) => m.includes(':/etc/prometheus/targets'))!;
    const targetsDir = targetsMount.split(':')[0]!;
    const promConfig = parse(readFileSync(projectPath('grafana/prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string; file_sd_configs: { files: string[] }[] }[] };
    const targetOf = (job: string) => {
      const file = promConfig.scrape_configs.find((s) => s.job_name === job)!.file_sd_configs[0]!.files[0]!;
      const sd = parse(readFileSync(projectPath(targetsDir, file.replace(/^targets\//, '')), 'utf8')) as { targets: string[] }[];
      return hostPortOf(sd[0]!.targets[0]!);
    };
    expect(targetOf('instock-engine')).toEqual({ host: 'engine', port: loadConfig(envOf('engine')).engineMetricsPort });
    expect(targetOf('instock-gateway')).toEqual({ host: 'gateway', port: loadConfig(envOf('gateway')).gatewayPort });
  });

  it('provisions Grafana with the Prometheus datasource and the dashboards from grafana/', () => {
    const mounts = services.grafana?.volumes ?? [];
    for (const mount of mounts) expect(existsSync(projectPath(mount.split(':')[0]!)), mount).toBe(true);
    const datasource = parse(readFileSync(projectPath('grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: { url: string; uid: string }[] };
    const url = hostPortOf(datasource.datasources[0]!.url);
    expect(url.host).toBe('prometheus');
    expect(publishes('prometheus', url.port)).toBe(true);
    const provider = parse(readFileSync(projectPath('grafana/provisioning/dashboards/instock.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    expect(mounts).toContain(`./grafana/dashboards:${provider.providers[0]!.options.path}:ro`);
    // Every dashboard panel queries the provisioned datasource.
    for (const file of readdirSync(projectPath('grafana/dashboards')).filter((f) => f.endsWith('.json'))) {
      const dashboard = JSON.parse(readFileSync(projectPath('grafana/dashboards', file), 'utf8')) as { panels: { datasource: { uid: string } }[] };
      for (const panel of dashboard.panels) expect(panel.datasource.uid, file).toBe(datasource.datasources[0]!.uid);
    }
  });
});
