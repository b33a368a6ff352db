// How integration tests find the real services started by `npm run services -- up`.
// With CI=true a service that does not answer fails the test run; otherwise the tests that need it
// are skipped with one line saying how to start it.

import { Redis } from 'ioredis';
import { loadConfig } from '../../config/config.js';
import { servicesEnv } from '../../services/index.js';
import { kafkaClient } from '../../connectors/kafka.js';

export const config = loadConfig();
export const serviceEnv = servicesEnv(config);
export const ci = process.env.CI === 'true';

export const kafkaBrokers = (process.env.KAFKA_BROKERS || serviceEnv.KAFKA_BROKERS!).split(',');
export const redisUrl = process.env.REDIS_URL || serviceEnv.REDIS_URL!;
export const redisClusterNodes = (process.env.REDIS_CLUSTER_NODES || serviceEnv.REDIS_CLUSTER_NODES!).split(',');
export const prometheusUrl = process.env.PROMETHEUS_URL || serviceEnv.PROMETHEUS_URL!;

async function redisAnswers(hostPort: string): Promise<boolean> {
  const [host, port] = hostPort.split(':') as [string, string];
  const client = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, connectTimeout: 1000 });
  // Probes expect refusals while a server starts; the promise carries the error, not the event.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function kafkaAnswers(): Promise<boolean> {
  const admin = kafkaClient(kafkaBrokers, 'instock-test-probe').admin();
  try {
    await admin.connect();
    await admin.listTopics({ timeout: 3000 });
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function prometheusAnswers(): Promise<boolean> {
  try {
    return (await fetch(`${prometheusUrl}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

const probes = {
  kafka: kafkaAnswers,
  redis: () => redisAnswers(new URL(redisUrl).host),
  'redis-cluster': async () => (await Promise.all(redisClusterNodes.map(redisAnswers))).every(Boolean),
  prometheus: prometheusAnswers,
} as const;

export type ServiceProbe = keyof typeof probes;

/**
 * Resolves whether `service` answers. Under CI=true a missing service throws (the suite fails);
 * otherwise it prints how to start it and the caller skips.
 */
export async function requireService(service: ServiceProbe): Promise<boolean> {
  if (await probes[service]()) return true;
  const hint = `${service} is not running: start the local services with \`npm run services -- up\``;
  if (ci) throw new Error(`CI=true and ${hint}`);
  console.warn(`skipping ${service} tests: ${hint}`);
  return false;
}
