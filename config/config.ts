// The one typed configuration module. Every setting has a default, an environment variable, a
// line in README's table (test/unit/config.test.ts keeps README honest) and a validator whose
// error names the variable and the expected form.
//
// Nothing configured means the embedded default: in-process stream instead of Kafka, in-memory
// store instead of Redis, chDB in-process instead of a ClickHouse server.

import { availableParallelism, tmpdir } from 'node:os';
import { resolve } from 'node:path';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

interface Setting<T> {
  env: string;
  /** The default as a user would type it (shown in README and `instock config`). */
  fallback: string;
  doc: string;
  parse: (raw: string, env: string) => T;
}

function fail(env: string, raw: string, expected: string): never {
  throw new ConfigError(`${env}=${JSON.stringify(raw)} is invalid: expected ${expected}`);
}

const text = (raw: string) => raw.trim();

function integer(min: number, max: number) {
  return (raw: string, env: string): number => {
    const trimmed = raw.trim();
    if (!/^-?\d+$/.test(trimmed)) fail(env, raw, `an integer between ${min} and ${max}`);
    const value = Number(trimmed);
    if (value < min || value > max) fail(env, raw, `an integer between ${min} and ${max}`);
    return value;
  };
}

const port = integer(1, 65535);

/** `auto`: one per core this process may use (os.availableParallelism), at most `max`; or a count. */
function threadCount(max: number) {
  return (raw: string, env: string): number => {
    const trimmed = raw.trim();
    if (trimmed.toLowerCase() === 'auto') return Math.min(max, availableParallelism());
    if (!/^\d+$/.test(trimmed) || Number(trimmed) < 1 || Number(trimmed) > max) fail(env, raw, `auto or an integer between 1 and ${max}`);
    return Number(trimmed);
  };
}

function oneOf<const T extends string>(...choices: T[]) {
  return (raw: string, env: string): T => {
    const value = raw.trim() as T;
    if (!choices.includes(value)) fail(env, raw, `one of ${choices.join(', ')}`);
    return value;
  };
}

/** host:port pairs separated by commas; empty means "not configured". */
function hostPorts(raw: string, env: string): string[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    const match = /^([A-Za-z0-9.\-_[\]:]+):(\d{1,5})$/.exec(item);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      fail(env, raw, 'a comma-separated list of host:port, e.g. 127.0.0.1:9092,127.0.0.1:9093');
    }
  }
  return items;
}

function url(protocols: string[]) {
  return (raw: string, env: string): string => {
    const value = raw.trim();
    if (value === '') return '';
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      fail(env, raw, `a URL starting with ${protocols.join(' or ')}`);
    }
    if (!protocols.includes(parsed.protocol)) fail(env, raw, `a URL starting with ${protocols.join(' or ')}`);
    return value;
  };
}

function portList(raw: string, env: string): number[] {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) fail(env, raw, 'a comma-separated list of ports');
  return items.map((item) => port(item, env));
}

const settings = {
  dataDir: { env: 'INSTOCK_DATA_DIR', fallback: '.instock', doc: 'Directory for local service data, PID files, logs and the embedded chDB database.', parse: (raw: string) => resolve(raw.trim()) },
  logLevel: { env: 'LOG_LEVEL', fallback: 'info', doc: 'Verbosity of the Kafka client\'s own logs: debug (everything, connections included), info and warn (its warnings), error. Instock\'s own lines (ready, reloads, retries) always print.', parse: oneOf('debug', 'info', 'warn', 'error') },

  kafkaBrokers: { env: 'KAFKA_BROKERS', fallback: '', doc: 'Kafka bootstrap servers (host:port,…). Empty: the in-process stream of the embedded default.', parse: hostPorts },
  kafkaTopicStock: { env: 'KAFKA_TOPIC_STOCK', fallback: 'inventory.stock', doc: 'Topic of incoming stock events (key = sku).', parse: text },
  kafkaTopicChanges: { env: 'KAFKA_TOPIC_CHANGES', fallback: 'inventory.changes', doc: 'Topic of the ATP change feed (key = sku).', parse: text },
  kafkaTopicDlq: { env: 'KAFKA_TOPIC_DLQ', fallback: 'inventory.dlq', doc: 'Dead-letter topic for rejected events (reason + original bytes).', parse: text },
  kafkaPartitions: { env: 'KAFKA_PARTITIONS', fallback: '6', doc: 'Partition count used when Instock creates its topics.', parse: integer(1, 1024) },
  kafkaReplication: { env: 'KAFKA_REPLICATION', fallback: '1', doc: 'Replication factor used when Instock creates its topics (3 with the 3-broker local cluster).', parse: integer(1, 16) },
  kafkaSessionTimeoutMs: { env: 'KAFKA_SESSION_TIMEOUT_MS', fallback: '10000', doc: 'Consumer group session timeout: how soon the partitions of a dead engine move to a live one.', parse: integer(6000, 300000) },
  kafkaGroupId: { env: 'KAFKA_GROUP_ID', fallback: 'instock-engine', doc: 'Consumer group of the engine processes.', parse: text },
  kafkaTopicReservations: { env: 'KAFKA_TOPIC_RESERVATIONS', fallback: 'inventory.reservations', doc: 'Topic of reservation transitions (key = reservation id), written by the gateway, read by the engine (velocity) and the history consumer.', parse: text },
  kafkaHistoryGroupId: { env: 'KAFKA_HISTORY_GROUP_ID', fallback: 'instock-history', doc: 'Consumer group of the history consumer (its own, so ClickHouse never slows ATP).', parse: text },

  redisUrl: { env: 'REDIS_URL', fallback: '', doc: 'Standalone Redis, e.g. redis://127.0.0.1:16379. Empty (and no cluster): the in-memory store.', parse: url(['redis:', 'rediss:']) },
  redisClusterNodes: { env: 'REDIS_CLUSTER_NODES', fallback: '', doc: 'Redis Cluster seed nodes (host:port,…); takes precedence over REDIS_URL.', parse: hostPorts },

  clickhouseUrl: { env: 'CLICKHOUSE_URL', fallback: '', doc: 'ClickHouse server HTTP URL, e.g. http://127.0.0.1:8123. Empty: chDB in-process under INSTOCK_DATA_DIR.', parse: url(['http:', 'https:']) },
  clickhouseDatabase: { env: 'CLICKHOUSE_DATABASE', fallback: 'instock', doc: 'ClickHouse database holding the history tables.', parse: text },

  gatewayHost: { env: 'GATEWAY_HOST', fallback: '127.0.0.1', doc: 'Address the gateway and the engine\'s /metrics listen on.', parse: text },
  gatewayPort: { env: 'GATEWAY_PORT', fallback: '8080', doc: 'HTTP/WebSocket port of the gateway (its /metrics too); 0 picks a free port and prints it.', parse: integer(0, 65535) },
  gatewayApiKeys: { env: 'GATEWAY_API_KEYS', fallback: '', doc: 'API keys as name:secret:scope+scope,… (scopes availability:read, reservations:write, admin). Empty: npm start generates one key with every scope and prints it.', parse: text },
  gatewayCorsOrigins: { env: 'GATEWAY_CORS_ORIGINS', fallback: '', doc: 'Storefront origins allowed by CORS, comma-separated (e.g. https://shop.example.com). Empty: no CORS headers.', parse: text },
  gatewayThreads: { env: 'GATEWAY_THREADS', fallback: 'auto', doc: 'Threads serving HTTP/WebSocket (`instock start`, `instock gateway`): a count, or `auto` for one per core (`os.availableParallelism()`), on one port (the main thread accepts connections and hands them to the threads in turn); they share each key\'s rate limit, /metrics sums them. On Redis each thread has its own connection; on the in-memory store the main thread keeps the store, runs the threads\' store operations and serves no HTTP itself, and the threads read positions from a copy it keeps in shared memory.', parse: threadCount(64) },
  gatewayRateLimitRps: { env: 'GATEWAY_RATE_LIMIT_RPS', fallback: '2000', doc: 'Requests per second allowed per API key (token bucket; bursts up to 2 s worth).', parse: integer(1, 10_000_000) },
  networkFile: { env: 'NETWORK_FILE', fallback: '', doc: 'Network configuration (locations, channels, carriers), JSON or YAML; reloaded when it changes. Empty: the built-in sample network.', parse: (raw: string) => (raw.trim() === '' ? '' : resolve(raw.trim())) },
  sampleSkus: { env: 'SAMPLE_SKUS', fallback: '5000', doc: 'SKUs with stock that the embedded default loads at start (0: none).', parse: integer(0, 1_000_000) },
  historyBatchRows: { env: 'HISTORY_BATCH_ROWS', fallback: '100000', doc: 'Rows per ClickHouse insert of the history writer (a table is also flushed every second).', parse: integer(100, 1_000_000) },
  historyMetricsPort: { env: 'HISTORY_METRICS_PORT', fallback: '9465', doc: 'Port of the history consumer\'s /metrics when it runs as its own process (instock history); 0 picks a free port and prints it.', parse: integer(0, 65535) },
  engineColdLaneMax: { env: 'ENGINE_COLD_LANE_MAX', fallback: '10000000', doc: 'Cold events the engine holds waiting, in memory and spilled to disk (packed, ~50 bytes each, or ~115 undecoded with ENGINE_UNDECODED_COLD_LAG: the default is 0.5-1.2 GB); past it, cold events are skipped and read again from Kafka later.', parse: integer(1000, 1_000_000_000) },
  engineColdLaneMemoryMb: { env: 'ENGINE_COLD_LANE_MEMORY_MB', fallback: '64', doc: 'Memory the cold lane may use (1 MiB slabs, ~20,000 events each) before it writes slabs to ENGINE_SPILL_DIR.', parse: integer(2, 1_000_000) },
  engineSpillDir: { env: 'ENGINE_SPILL_DIR', fallback: '', doc: 'Directory for the cold lane\'s spilled slabs (scratch: a directory per process, removed at stop). Empty: the system temporary directory.', parse: (raw: string) => (raw.trim() === '' ? tmpdir() : resolve(raw.trim())) },
  engineUndecodedColdLag: { env: 'ENGINE_UNDECODED_COLD_LAG', fallback: '1', doc: 'While reading is behind, cold events of a partition more than this many events behind wait in the cold lane undecoded, decoded when they are applied: reading keeps up with more in an overload. 0: off.', parse: integer(0, 1_000_000_000) },
  engineMetricsPort: { env: 'ENGINE_METRICS_PORT', fallback: '9464', doc: 'Port of the engine\'s /metrics when it runs as its own process; 0 picks a free port and prints it.', parse: integer(0, 65535) },

  servicesKafkaVersion: { env: 'SERVICES_KAFKA_VERSION', fallback: '3.9.1', doc: 'Apache Kafka version the services command fetches from Maven Central.', parse: (raw: string, env: string) => (/^\d+\.\d+\.\d+$/.test(raw.trim()) ? raw.trim() : fail(env, raw, 'a version like 3.9.1')) },
  servicesKafkaPorts: { env: 'SERVICES_KAFKA_PORTS', fallback: '19092,19094,19096', doc: 'Broker ports of the local Kafka (first one in single-broker mode; controller = port + 1).', parse: portList },
  servicesKafkaBrokers: { env: 'SERVICES_KAFKA_BROKERS', fallback: '1', doc: 'Local Kafka brokers to start: 1, or 3 for fault tests.', parse: (raw: string, env: string) => { const n = integer(1, 3)(raw, env); if (n === 2) fail(env, raw, '1 or 3'); return n; } },
  servicesKafkaHeapMb: { env: 'SERVICES_KAFKA_HEAP_MB', fallback: '768', doc: 'JVM heap of each local Kafka broker, in MiB.', parse: integer(128, 16384) },
  servicesRedisPort: { env: 'SERVICES_REDIS_PORT', fallback: '16379', doc: 'Port of the local standalone Redis.', parse: port },
  servicesRedisClusterPorts: { env: 'SERVICES_REDIS_CLUSTER_PORTS', fallback: '17001,17002,17003', doc: 'Ports of the local 3-master Redis Cluster.', parse: portList },
  servicesPrometheusPort: { env: 'SERVICES_PROMETHEUS_PORT', fallback: '19090', doc: 'Port of the local Prometheus.', parse: port },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof settings;
export type Config = { [K in keyof Settings]: ReturnType<Settings[K]['parse']> };
export type SettingName = keyof Settings;

/** Reads and validates every setting; throws a ConfigError naming each bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const out: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const [name, setting] of Object.entries(settings) as [string, Setting<unknown>][]) {
    const raw = env[setting.env];
    try {
      out[name] = setting.parse(raw === undefined ? setting.fallback : raw, setting.env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      errors.push(error.message);
    }
  }
  if (errors.length > 0) throw new ConfigError(`invalid configuration:\n  ${errors.join('\n  ')}`);
  return out as Config;
}

/** Every setting, for README's table and `instock config`. */
export function describeSettings(): { name: SettingName; env: string; fallback: string; doc: string }[] {
  return (Object.entries(settings) as [SettingName, Setting<unknown>][]).map(([name, s]) => ({
    name,
    env: s.env,
    fallback: s.fallback,
    doc: s.doc,
  }));
}

/** Which backends the configuration selects; nothing configured is the embedded default. */
export function backends(config: Config): { stream: 'kafka' | 'in-process'; store: 'redis-cluster' | 'redis' | 'memory'; history: 'clickhouse' | 'chdb' } {
  return {
    stream: config.kafkaBrokers.length > 0 ? 'kafka' : 'in-process',
    store: config.redisClusterNodes.length > 0 ? 'redis-cluster' : config.redisUrl ? 'redis' : 'memory',
    history: config.clickhouseUrl ? 'clickhouse' : 'chdb',
  };
}
