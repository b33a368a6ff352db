// `instock services up|down|status [kafka|redis|prometheus ...]`: the real services Instock's tests
// and benchmarks run against, on 127.0.0.1, without Docker. Data, PID files and logs live under
// <INSTOCK_DATA_DIR>/services; every process is stopped by its PID file.

import type { Config } from '../config/config.js';
import { kafkaDown, kafkaStatus, kafkaUp } from './kafka.js';
import { ensureDebianPackages, layout, log, runningPid } from './processes.js';
import { prometheusDown, prometheusStatus, prometheusUp } from './prometheus.js';
import { redisDown, redisStatus, redisUp } from './redis.js';

export const serviceNames = ['kafka', 'redis', 'prometheus'] as const;
export type ServiceName = (typeof serviceNames)[number];

export function parseServiceNames(args: string[]): ServiceName[] {
  if (args.length === 0 || args.includes('all')) return [...serviceNames];
  for (const arg of args) {
    if (!(serviceNames as readonly string[]).includes(arg)) {
      throw new Error(`unknown service "${arg}": expected one of ${serviceNames.join(', ')} or all`);
    }
  }
  return args as ServiceName[];
}

function kafkaPorts(config: Config): number[] {
  if (config.servicesKafkaPorts.length < config.servicesKafkaBrokers) {
    throw new Error(`SERVICES_KAFKA_PORTS lists ${config.servicesKafkaPorts.length} ports but SERVICES_KAFKA_BROKERS=${config.servicesKafkaBrokers}`);
  }
  return config.servicesKafkaPorts.slice(0, config.servicesKafkaBrokers);
}

export async function servicesUp(config: Config, which: ServiceName[]): Promise<void> {
  const paths = layout(config.dataDir);
  const t0 = Date.now();
  ensureDebianPackages([
    ...(which.includes('redis') ? [{ command: 'redis-server', pkg: 'redis-server' }, { command: 'redis-cli', pkg: 'redis-tools' }] : []),
    ...(which.includes('prometheus') ? [{ command: 'prometheus', pkg: 'prometheus' }] : []),
    ...(which.includes('kafka') ? [{ command: 'java', pkg: 'openjdk-17-jre-headless' }, { command: 'mvn', pkg: 'maven' }] : []),
  ]);
  // Start the slow JVM first; Redis and Prometheus come up while it boots.
  const kafka = which.includes('kafka')
    ? kafkaUp(paths, { version: config.servicesKafkaVersion, ports: kafkaPorts(config), heapMb: config.servicesKafkaHeapMb, topics: config })
    : Promise.resolve();
  if (which.includes('redis')) await redisUp(paths, config.servicesRedisPort, config.servicesRedisClusterPorts);
  if (which.includes('prometheus')) {
    await prometheusUp(paths, { prometheus: config.servicesPrometheusPort, engineMetrics: config.engineMetricsPort, gateway: config.gatewayPort });
  }
  await kafka;
  log(`all requested services up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  printEnv(config, which);
}

/** The environment that points Instock at the services just started. */
export function servicesEnv(config: Config, which: ServiceName[] = [...serviceNames]): Record<string, string> {
  const env: Record<string, string> = {};
  if (which.includes('kafka')) env.KAFKA_BROKERS = kafkaPorts(config).map((p) => `127.0.0.1:${p}`).join(',');
  if (which.includes('redis')) {
    env.REDIS_URL = `redis://127.0.0.1:${config.servicesRedisPort}`;
    env.REDIS_CLUSTER_NODES = config.servicesRedisClusterPorts.map((p) => `127.0.0.1:${p}`).join(',');
  }
  if (which.includes('prometheus')) env.PROMETHEUS_URL = `http://127.0.0.1:${config.servicesPrometheusPort}`;
  return env;
}

/**
 * The local brokers' processes when `brokers` are the ones `services up` runs (benchmarks meter
 * their CPU); undefined for brokers elsewhere.
 */
export function localKafkaProcesses(config: Config, brokers: string[]): { name: string; pid: number | undefined }[] | undefined {
  const ports = kafkaPorts(config);
  if (!brokers.every((b) => ports.some((p) => b === `127.0.0.1:${p}` || b === `localhost:${p}`))) return undefined;
  const paths = layout(config.dataDir);
  return ports.map((_, i) => ({ name: ports.length === 1 ? 'Kafka broker' : `Kafka broker ${i + 1}`, pid: runningPid(paths, `kafka-${i + 1}`) }));
}

function printEnv(config: Config, which: ServiceName[]): void {
  const env = servicesEnv(config, which);
  log('to point Instock at them (REDIS_CLUSTER_NODES selects the cluster over REDIS_URL):');
  for (const [key, value] of Object.entries(env)) process.stdout.write(`  export ${key}=${value}\n`);
}

export async function servicesDown(config: Config, which: ServiceName[]): Promise<void> {
  const paths = layout(config.dataDir);
  const stopped: string[] = [];
  // Reverse order of start: nothing depends on Prometheus, Kafka takes longest to stop.
  if (which.includes('prometheus') && (await prometheusDown(paths))) stopped.push('prometheus');
  if (which.includes('redis')) stopped.push(...(await redisDown(paths, config.servicesRedisClusterPorts)));
  if (which.includes('kafka')) stopped.push(...(await kafkaDown(paths, config.servicesKafkaPorts)));
  log(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing was running');
}

export async function servicesStatus(config: Config, which: ServiceName[]): Promise<boolean> {
  const paths = layout(config.dataDir);
  const lines: string[] = [];
  if (which.includes('kafka')) lines.push(...(await kafkaStatus(paths, config.servicesKafkaPorts)));
  if (which.includes('redis')) lines.push(...(await redisStatus(paths, config.servicesRedisPort, config.servicesRedisClusterPorts)));
  if (which.includes('prometheus')) lines.push(await prometheusStatus(paths, config.servicesPrometheusPort));
  for (const line of lines) process.stdout.write(`${line}\n`);
  return lines.every((line) => !/stopped|not answering|partly/.test(line));
}
