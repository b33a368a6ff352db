import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { backends, ConfigError, describeSettings, loadConfig } from '../../config/config.js';
import { projectPath } from '../../config/paths.js';

describe('configuration', () => {
  it('with nothing configured selects the embedded default', () => {
    const config = loadConfig({});
    expect(backends(config)).toEqual({ stream: 'in-process', store: 'memory', history: 'chdb' });
    expect(config.gatewayPort).toBe(8080);
    expect(config.kafkaTopicStock).toBe('inventory.stock');
    // The gateway serves from one thread per core unless told otherwise.
    expect(config.gatewayThreads).toBe(Math.min(64, availableParallelism()));
    expect(loadConfig({ GATEWAY_THREADS: '3' }).gatewayThreads).toBe(3);
    expect(loadConfig({ GATEWAY_THREADS: ' Auto ' }).gatewayThreads).toBe(config.gatewayThreads);
  });

  it('selects Kafka, Redis Cluster over Redis, and a ClickHouse server when they are configured', () => {
    const config = loadConfig({
      KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9094',
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_CLUSTER_NODES: '127.0.0.1:7001',
      CLICKHOUSE_URL: 'http://127.0.0.1:8123',
    });
    expect(config.kafkaBrokers).toEqual(['127.0.0.1:9092', '127.0.0.1:9094']);
    expect(backends(config)).toEqual({ stream: 'kafka', store: 'redis-cluster', history: 'clickhouse' });
    expect(backends(loadConfig({ REDIS_URL: 'redis://h:1' })).store).toBe('redis');
  });

  it.each([
    ['GATEWAY_PORT', 'eighty', /GATEWAY_PORT="eighty" is invalid: expected an integer between 0 and 65535/],
    ['GATEWAY_PORT', '70000', /GATEWAY_PORT="70000" is invalid/],
    ['KAFKA_BROKERS', 'localhost', /KAFKA_BROKERS="localhost" is invalid: expected a comma-separated list of host:port/],
    ['REDIS_URL', 'http://x:1', /REDIS_URL="http:\/\/x:1" is invalid: expected a URL starting with redis: or rediss:/],
    ['CLICKHOUSE_URL', 'not a url', /CLICKHOUSE_URL="not a url" is invalid/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL="loud" is invalid: expected one of debug, info, warn, error/],
    ['KAFKA_PARTITIONS', '0', /KAFKA_PARTITIONS="0" is invalid: expected an integer between 1 and 1024/],
    ['GATEWAY_THREADS', '0', /GATEWAY_THREADS="0" is invalid: expected auto or an integer between 1 and 64/],
    ['GATEWAY_THREADS', 'many', /GATEWAY_THREADS="many" is invalid: expected auto or an integer between 1 and 64/],
    ['SERVICES_KAFKA_BROKERS', '2', /SERVICES_KAFKA_BROKERS="2" is invalid: expected 1 or 3/],
  ])('rejects %s=%s with a message naming the variable and the expected form', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('reports every invalid variable at once, not only the first', () => {
    expect(() => loadConfig({ GATEWAY_PORT: 'x', LOG_LEVEL: 'y' })).toThrow(/LOG_LEVEL="y"[\s\S]*GATEWAY_PORT="x"/);
  });

  it('documents every setting in README with its default', () => {
    const readme = readFileSync(projectPath('README.md'), 'utf8');
    for (const setting of describeSettings()) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${setting.env}\``));
      expect(row, `README's config table has no row for ${setting.env}`).toBeDefined();
      expect(row).toContain(setting.fallback === '' ? '(empty)' : `\`${setting.fallback}\``);
    }
  });
});
