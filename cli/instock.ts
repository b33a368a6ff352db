// The `instock` command. Subcommands:
//   start                      engine and gateway in one process (embedded default unless Kafka/Redis/ClickHouse are configured)
//   gateway | engine           one role as its own process, against the configured Kafka/Redis/ClickHouse
//   services up|down|status    the local Kafka, Redis (+ Cluster) and Prometheus for tests and benchmarks
//   config                     every setting, its env var, default and current value

import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { backends, ConfigError, describeSettings, loadConfig, type Config } from '../config/config.js';

const usage = `usage: instock <command> [options]

commands:
  start                                 run Instock: engine + gateway in one process (embedded default unless Kafka/Redis/ClickHouse are configured)
  gateway                               run the HTTP/WebSocket gateway alone
  engine                                run the stream engine alone (needs KAFKA_BROKERS; Redis, or in-memory store)
  history                               run the history consumer alone: Kafka → ClickHouse (needs KAFKA_BROKERS)
  analytics velocity|stockouts|cover|sellthrough [--top N] [--since 7d] [--channel c] [--sku s] [--format table|csv|json]
                                        history reports (ClickHouse server, a running npm start, or chDB)
  services up|down|status [service…]    local services for tests and benchmarks: kafka, redis, prometheus (default: all)
  bench store|availability|ingest|ingest-ceiling|history [--quick]
                                        benchmarks; table on stdout, JSON under benchmarks/results/
                                        (store --positions N: memory at N positions, default 1,000,000)
  config                                print every setting with its env var, default and current value
  help                                  this text

Settings come from environment variables; \`instock config\` lists them.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${usage}\n`);
    return command ? 0 : 1;
  }
  const config = loadConfig();
  switch (command) {
    case 'services':
      return services(config, rest);
    case 'config':
      return printConfig(config);
    case 'start':
    case 'gateway': {
      const { start } = await import('./start.js');
      return start(config, command);
    }
    case 'bench':
      return bench(config, rest);
    case 'history':
      return (await import('./history.js')).historyCommand(config, rest);
    case 'analytics':
      return (await import('./history.js')).analyticsCommand(config, rest);
    case 'engine':
      return engine(config);

    default:
      process.stderr.write(`instock: unknown command "${command}"\n${usage}\n`);
      return 2;
  }
}

async function services(config: Config, args: string[]): Promise<number> {
  const { servicesDown, servicesStatus, servicesUp, parseServiceNames } = await import('../services/index.js');
  const { positionals } = parseArgs({ args, allowPositionals: true, strict: true });
  const [action, ...names] = positionals;
  const which = parseServiceNames(names);
  switch (action) {
    case 'up':
      await servicesUp(config, which);
      return 0;
    case 'down':
      await servicesDown(config, which);
      return 0;
    case 'status':
      return (await servicesStatus(config, which)) ? 0 : 3;
    default:
      process.stderr.write(`instock services: expected up, down or status, got ${action ?? 'nothing'}\n`);
      return 2;
  }
}

async function bench(config: Config, args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, strict: true, options: { quick: { type: 'boolean', default: false }, positions: { type: 'string' } } });
  const [name] = positionals;
  const quick = values.quick ?? false;
  if (name === 'store') {
    const positions = values.positions === undefined ? undefined : Number(values.positions);
    if (positions !== undefined && !(Number.isInteger(positions) && positions >= 1000 && positions <= 50_000_000)) {
      process.stderr.write(`instock bench store: --positions is ${values.positions}: expected a whole number from 1000 to 50000000\n`);
      return 2;
    }
    const { benchStore } = await import('../benchmarks/store.js');
    await benchStore({ quick, dataDir: config.dataDir, ...(positions === undefined ? {} : { positions }) });
    return 0;
  }
  if (name === 'history') {
    const { benchHistory } = await import('../benchmarks/history.js');
    await benchHistory({ quick, url: config.clickhouseUrl });
    return 0;
  }
  if (name === 'availability') {
    const { benchAvailability } = await import('../benchmarks/availability.js');
    await benchAvailability({ quick, dataDir: config.dataDir });
    return 0;
  }
  if (name === 'ingest') {
    const { benchIngest } = await import('../benchmarks/ingest.js');
    const { brokers, brokerProcesses } = await benchKafka(config);
    await benchIngest({ quick, dataDir: config.dataDir, kafkaBrokers: brokers, coldLaneMax: config.engineColdLaneMax, coldSpill: { dir: config.engineSpillDir, memoryBytes: config.engineColdLaneMemoryMb * 2 ** 20 }, undecodedColdLag: config.engineUndecodedColdLag, ...(brokerProcesses ? { brokerProcesses } : {}) });
    return 0;
  }
  if (name === 'ingest-ceiling') {
    const { benchIngestCeiling } = await import('../benchmarks/ingest-ceiling.js');
    const { brokers, brokerProcesses } = await benchKafka(config);
    await benchIngestCeiling({ quick, dataDir: config.dataDir, kafkaBrokers: brokers, ...(brokerProcesses ? { brokerProcesses } : {}) });
    return 0;
  }
  process.stderr.write(`instock bench: expected a benchmark name (store, availability, ingest, ingest-ceiling, history), got ${name ?? 'nothing'}\n`);
  return 2;
}

/** The brokers a Kafka benchmark uses (KAFKA_BROKERS, else the local services'), and their processes when they are local (CPU rows). */
async function benchKafka(config: Config) {
  const { localKafkaProcesses, servicesEnv } = await import('../services/index.js');
  const brokers = config.kafkaBrokers.length > 0 ? config.kafkaBrokers : servicesEnv(config, ['kafka']).KAFKA_BROKERS!.split(',');
  return { brokers, brokerProcesses: localKafkaProcesses(config, brokers) };
}

function printConfig(config: Config): number {
  for (const setting of describeSettings()) {
    const value = config[setting.name];
    process.stdout.write(`${setting.env.padEnd(30)} ${JSON.stringify(value).padEnd(40)} default ${JSON.stringify(setting.fallback)}\n`);
  }
  process.stdout.write(`backends: ${JSON.stringify(backends(config))}\n`);
  return 0;
}

async function engine(config: Config): Promise<number> {
  if (config.kafkaBrokers.length === 0) {
    process.stderr.write('instock engine: KAFKA_BROKERS is empty: the engine consumes Kafka (set it, e.g. KAFKA_BROKERS=127.0.0.1:19092)\n');
    return 2;
  }
  const { kafkaClient } = await import('../connectors/kafka.js');
  const { StreamEngine } = await import('../engine/stream/engine.js');
  const { openStore } = await import('../engine/store/open.js');
  const { VelocityTracker } = await import('../engine/core/velocity.js');
  const { loadNetworkFile, watchNetworkFile } = await import('../engine/network/config.js');
  const { sampleNetwork } = await import('../engine/network/sample.js');
  const store = openStore(config);
  const velocity = new VelocityTracker();
  const { seedTrackerFromHistory } = await import('../engine/history/velocity-seed.js');
  const { chdbPathFor } = await import('../engine/history/clickhouse.js');
  process.stdout.write(`${await seedTrackerFromHistory({ url: config.clickhouseUrl, chdbPath: chdbPathFor(config.dataDir), database: config.clickhouseDatabase }, velocity, Date.now())}\n`);
  // The network gives the change feed its channel ATP and the known locations; a changed
  // NETWORK_FILE applies to the next batch, and so do location statuses set on any gateway.
  const { NetworkState, statusReadFailed } = await import('../gateway/network-state.js');
  const network = new NetworkState(config.networkFile ? loadNetworkFile(config.networkFile) : sampleNetwork(), store);
  const stopFollowing = await network.follow(undefined, statusReadFailed);
  const watcher = config.networkFile
    ? watchNetworkFile(
        config.networkFile,
        (n) => {
          network.reload(n);
          process.stdout.write(`network configuration reloaded from ${config.networkFile}\n`);
        },
        (error) => process.stderr.write(`network configuration NOT reloaded, the previous one stays: ${error.message}\n`),
      )
    : undefined;
  const running = new StreamEngine({
    kafka: kafkaClient(config.kafkaBrokers, 'instock-engine', config.logLevel),
    topics: { stock: config.kafkaTopicStock, changes: config.kafkaTopicChanges, dlq: config.kafkaTopicDlq, reservations: config.kafkaTopicReservations },
    groupId: config.kafkaGroupId,
    sessionTimeoutMs: config.kafkaSessionTimeoutMs,
    store,
    network: () => network.current(),
    // Seeded from history, then from inventory.reservations as they come.
    velocity,
    laneEventsMax: { cold: config.engineColdLaneMax },
    coldSpill: { dir: config.engineSpillDir, memoryBytes: config.engineColdLaneMemoryMb * 2 ** 20 },
    undecodedColdLag: config.engineUndecodedColdLag,
    log: (message) => process.stdout.write(`${message}\n`),
  });
  const { startMetricsServer } = await import('../engine/stream/metrics.js');
  const metricsServer = await startMetricsServer(running.metrics, config.gatewayHost, config.engineMetricsPort);
  await running.start();
  const metricsPort = (metricsServer.address() as AddressInfo).port;
  process.stdout.write(`instock engine metrics on http://${config.gatewayHost}:${metricsPort}/metrics\n`);
  process.stdout.write(`instock engine consuming ${config.kafkaTopicStock} as group ${config.kafkaGroupId} into the ${store.kind} store\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  watcher?.close();
  stopFollowing();
  await running.stop();
  await store.close();
  metricsServer.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`instock: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`instock: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
