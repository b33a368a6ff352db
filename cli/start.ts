// `instock start` and `instock gateway`.
//
// start, nothing configured (the embedded default): engine and gateway in one process: the
//   in-process stream in place of Kafka, the in-memory store, chDB history, the sample network
//   and its stock, a generated API key with every scope; prints the URL, the key and a first curl.
// start, with Kafka/Redis/ClickHouse configured: the same process runs the Kafka engine and the
//   gateway against them (the sample stock is produced to inventory.stock).
// gateway: the gateway alone (stateless; run as many as needed) against the configured store, with
//   live stock from inventory.changes when Kafka is configured.

import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { backends, type Config } from '../config/config.js';
import { VelocityTracker } from '../engine/core/velocity.js';
import type { StockEvent } from '../engine/core/types.js';
import { loadNetworkFile, watchNetworkFile, type NetworkConfig } from '../engine/network/config.js';
import { sampleNetwork, sampleSku, sampleStockEvents } from '../engine/network/sample.js';
import { openStore } from '../engine/store/open.js';
import { MemoryStore } from '../engine/store/memory-store.js';
import type { AtpChange } from '../engine/stream/wire.js';
import type { InventoryStore } from '../engine/store/types.js';
import { settlesWithin } from '../engine/wait.js';
import { ApiKeys, generateApiKey, parseApiKeys, scopes, sharedRateBuckets } from '../gateway/auth.js';
import { KafkaFeeds, LocalFeeds } from '../gateway/feeds.js';
import type { KafkaClient } from '../connectors/kafka.js';
import { NetworkState, statusReadFailed } from '../gateway/network-state.js';
import { acceptConnections, startGateway, type Acceptor, type GatewayOptions } from '../gateway/server.js';
import { GatewayService, type GatewayFeeds } from '../gateway/service.js';
import { ThreadStore } from '../gateway/thread-store.js';
import { GatewayThreads, ThreadLink, type ThreadData } from '../gateway/threads.js';

/** What cli/start-history.ts gives `start`: the writer the in-process feeds use, analytics, close. */
interface RunningHistory {
  writer: { stockEvents(events: readonly StockEvent[]): void };
  analytics: NonNullable<GatewayOptions['analytics']>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
/** How long `start` waits for the sample stock's history to be written before it serves anyway. */
const sampleHistoryWaitMs = 10_000;

/**
 * Writes the sample stock's history (~110,000 rows: its events and ATP changes) before serving:
 * written in the first second of serving, encoding them held the main thread for ~0.5 s, and the
 * first requests waited behind it. A ClickHouse that does not take them delays serving by at most
 * sampleHistoryWaitMs; the writer keeps them and retries.
 */
async function flushSampleHistory(history: RunningHistory, write: (message: string) => void): Promise<void> {
  const t0 = Date.now();
  const written = await settlesWithin(history.flush(), sampleHistoryWaitMs);
  write(written ? `history: sample stock written in ${Date.now() - t0} ms` : `history: sample stock not written after ${sampleHistoryWaitMs} ms; serving, the writer retries`);
}

type StartHistory = (config: Config, deps: { feeds: GatewayFeeds; velocity: VelocityTracker; registry: Registry; kafka?: KafkaClient; log: (message: string) => void }) => Promise<RunningHistory>;

/** A fixed source time for the sample stock: loading it twice (e.g. against Redis) changes nothing. */
export const sampleAsOfMs = Date.UTC(2026, 0, 1);
/** How often held reservations past their TTL are released (the store also does it lazily on reads). */
const expirySweepMs = 1_000;
const expiryBatchMax = 1_000;

const write = (line: string) => process.stdout.write(`${line}\n`);

function loadNetwork(config: Config): NetworkConfig {
  return config.networkFile ? loadNetworkFile(config.networkFile) : sampleNetwork();
}

/** GATEWAY_API_KEYS, or one key with every scope: `generated` (a worker thread takes its main thread's), else a new one. */
function apiKeys(config: Config, generated?: string): { keys: ApiKeys; generated?: string } {
  if (config.gatewayApiKeys) return { keys: new ApiKeys(parseApiKeys(config.gatewayApiKeys)) };
  const secret = generated ?? generateApiKey();
  return { keys: new ApiKeys([{ name: 'embedded', secret, scopes }]), generated: secret };
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

/** The first curl a newcomer runs: a 2-line basket, delivery to Paris and pickup near it. */
export function firstCurl(url: string, apiKey: string, network: NetworkConfig): string {
  const channel = network.channels[0]!.id;
  const body = { channel, lines: [{ sku: sampleSku(1), qty: 1 }, { sku: sampleSku(2), qty: 2 }], destination: { lat: 48.8566, lon: 2.3522 }, pickup: { near: { lat: 48.8566, lon: 2.3522 }, radiusKm: 30 } };
  return `curl -s -H 'authorization: Bearer ${apiKey}' -H 'content-type: application/json' -d '${JSON.stringify(body)}' ${url}/v1/availability`;
}

/** Set in a worker thread of `instock gateway` (gateway/threads.ts). */
export interface AsThread {
  data: ThreadData;
  port: MessagePort;
}

export async function start(config: Config, role: 'start' | 'gateway', asThread?: AsThread): Promise<number> {
  const t0 = Date.now();
  const link = asThread ? new ThreadLink(asThread.port) : undefined;
  const registry = new Registry();
  // Process-wide series once, from the main thread (the threads' metrics are summed).
  if (!link) collectDefaultMetrics({ register: registry });
  link?.serveMetrics(registry);
  // A thread of a gateway on the in-memory store uses the main thread's (another would be another inventory).
  const store: InventoryStore = link && asThread?.data.mainStore ? new ThreadStore(link) : openStore(config);
  // Location statuses live in the store: a pause set on one gateway reaches every process on it.
  const network = new NetworkState(loadNetwork(config), store);
  const watcher = config.networkFile
    ? watchNetworkFile(
        config.networkFile,
        (n) => {
          network.reload(n);
          write(`network configuration reloaded from ${config.networkFile} (version ${n.version})`);
        },
        (error) => process.stderr.write(`network configuration NOT reloaded, the previous one stays: ${error.message}\n`),
      )
    : undefined;
  const kinds = backends(config);
  const velocity = new VelocityTracker();
  const closers: (() => Promise<void> | void)[] = [];
  // The statuses in force before the first request (a pause survives a restart), then every second.
  // Stopped first on shutdown (closers run in order): no read of a store being closed.
  closers.unshift(await network.follow(undefined, statusReadFailed));
  let feeds: GatewayFeeds;
  // Changes reach the live hub once the gateway exists; until then there is no subscriber to tell.
  const liveSink: { push?: (changes: AtpChange[]) => void } = {};
  let submitEvents: GatewayOptions['submitEvents'];
  let analytics: GatewayOptions['analytics'];

  const { keys, generated } = apiKeys(config, asThread?.data.generatedKey);
  // With threads, one bucket per key for the whole process (each thread's own would multiply the limit).
  const rateBuckets = asThread?.data.rateBuckets ?? (config.gatewayThreads > 1 ? sharedRateBuckets(keys.size) : undefined);

  let kafka: KafkaClient | undefined;
  if (link) {
    // A worker's feeds go through the main thread (one Kafka client per process).
    feeds = link.feeds;
    link.onChanges((changes) => liveSink.push?.(changes));
    if (asThread?.data.analytics) analytics = link.analytics;
    if (asThread?.data.submitEvents) submitEvents = link.submitEvents;
  } else if (config.kafkaBrokers.length > 0) {
    const { kafkaClient } = await import('../connectors/kafka.js');
    kafka = kafkaClient(config.kafkaBrokers, `instock-${role}`, config.logLevel);
    const kafkaFeeds = new KafkaFeeds(kafka, { changes: config.kafkaTopicChanges, reservations: config.kafkaTopicReservations }, (m) => process.stderr.write(`${m}\n`));
    await kafkaFeeds.start((changes) => liveSink.push?.(changes));
    closers.push(() => kafkaFeeds.stop());
    feeds = kafkaFeeds;
  } else {
    const local = new LocalFeeds();
    feeds = local;
    local.onChanges((changes) => liveSink.push?.(changes));
    // Holds feed velocity: what sells fast is applied first (Kafka mode: the engine reads inventory.reservations).
    local.onTransitions((transitions) => {
      for (const t of transitions) {
        if (t.transition !== 'held') continue;
        for (const line of t.lines) velocity.record(line.sku, t.channel, line.qty, t.atMs);
      }
    });
  }

  // History first: it seeds velocity, so best sellers lead from the first event. A ClickHouse that
  // does not answer never stops ATP: Instock starts without history and says so.
  let history: RunningHistory | undefined;
  if (role === 'start') {
    try {
      // Loaded by name: cli/start-history.ts wires engine/history, which can be absent from a build.
      const historyModule = './start-history.js';
      const { startHistory } = (await import(historyModule)) as { startHistory: StartHistory };
      history = await startHistory(config, { feeds, velocity, registry, ...(kafka ? { kafka } : {}), log: write });
      const h = history;
      analytics = (query) => h.analytics(query);
      closers.push(() => h.close());
    } catch (error) {
      process.stderr.write(`instock: history (ClickHouse ${config.clickhouseUrl || 'chDB'}) is not available, running without it: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }

  if (role === 'start' && kafka) {
    const { StreamEngine } = await import('../engine/stream/engine.js');
    const engine = new StreamEngine({
      kafka,
      topics: { stock: config.kafkaTopicStock, changes: config.kafkaTopicChanges, dlq: config.kafkaTopicDlq, reservations: config.kafkaTopicReservations },
      groupId: config.kafkaGroupId,
      sessionTimeoutMs: config.kafkaSessionTimeoutMs,
      store,
      network: () => network.current(),
      velocity,
      registry,
      laneEventsMax: { cold: config.engineColdLaneMax },
      coldSpill: { dir: config.engineSpillDir, memoryBytes: config.engineColdLaneMemoryMb * 2 ** 20 },
      undecodedColdLag: config.engineUndecodedColdLag,
      log: write,
    } as ConstructorParameters<typeof StreamEngine>[0]);
    await engine.start();
    closers.unshift(() => engine.stop());
    if (config.sampleSkus > 0) {
      const { encodeStockEvent } = await import('../engine/stream/codec.js');
      const producer = kafka.producer({ kafkaJS: { acks: -1, idempotent: true } } as never);
      await producer.connect();
      const events = sampleStockEvents(network.current(), { skus: config.sampleSkus, asOfMs: sampleAsOfMs });
      for (let i = 0; i < events.length; i += 5_000) {
        await producer.send({ topic: config.kafkaTopicStock, messages: events.slice(i, i + 5_000).map((e) => ({ key: e.sku, value: encodeStockEvent(e) })) });
      }
      await producer.disconnect();
      write(`sample stock: ${events.length} snapshot events for ${config.sampleSkus} SKUs produced to ${config.kafkaTopicStock}`);
    }
  } else if (role === 'start') {
    const { InProcessStream } = await import('../engine/stream/in-process.js');
    const stream = new InProcessStream({ store, network: () => network.current(), velocity, registry });
    stream.onChanges((changes) => feeds.changes(changes));
    if (history) {
      const writer = history.writer;
      stream.onEvents((events) => writer.stockEvents(events));
    }
    closers.unshift(() => stream.close());
    submitEvents = (values) => stream.submit(values);
    if (config.sampleSkus > 0) {
      const events = sampleStockEvents(network.current(), { skus: config.sampleSkus, asOfMs: sampleAsOfMs });
      const tLoad = Date.now();
      for (let i = 0; i < events.length; i += 10_000) await stream.submit(events.slice(i, i + 10_000));
      write(`sample stock: ${events.length} snapshot events for ${config.sampleSkus} SKUs applied in ${Date.now() - tLoad} ms`);
      if (history) await flushSampleHistory(history, write);
    }
  }

  const corsOrigins = config.gatewayCorsOrigins.split(',').map((s) => s.trim()).filter(Boolean);
  let threads: GatewayThreads | undefined;
  // With threads on the in-memory store, the main thread keeps the store (and the in-process
  // stream) and runs the threads' store operations; it serves no HTTP itself: requests of its own
  // would delay every thread's reads (the main thread was the one saturated, the others waited).
  const mainServes = link !== undefined || config.gatewayThreads === 1 || kinds.store !== 'memory';
  let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
  if (mainServes) {
    const service = new GatewayService(store, network, feeds);
    closers.unshift(() => service.close());
    const running = await startGateway({
      host: config.gatewayHost,
      port: config.gatewayPort,
      // With threads, no gateway listens: an acceptor on the main thread does, and hands the
      // connections to them in turn (gateway/server.ts, acceptConnections).
      listen: config.gatewayThreads === 1,
      ...(config.gatewayThreads > 1 ? { thread: asThread?.data.index ?? 0, metricsText: () => (link ? link.metricsText() : threads ? threads.metricsText() : registry.metrics()) } : {}),
      registry,
      service,
      keys,
      rateLimitRps: config.gatewayRateLimitRps,
      ...(rateBuckets ? { rateBuckets } : {}),
      corsOrigins,
      ready: async () => {
        await store.positions('__ready__', Date.now());
        return true;
      },
      ...(analytics ? { analytics } : {}),
      ...(submitEvents ? { submitEvents } : {}),
    });
    closers.unshift(() => running.close());
    gateway = running;
  }
  let servedPort = gateway?.port ?? config.gatewayPort;
  liveSink.push = (changes) => {
    gateway?.live?.onChanges(changes);
    threads?.broadcastChanges(changes);
  };
  const shutdown = async () => {
    watcher?.close();
    for (const close of closers) await close();
    await store.close();
  };

  if (link) {
    link.ready(gateway!.descriptor);
    await link.stopped;
    await shutdown();
    return 0;
  }
  let acceptor: Acceptor | undefined;
  if (config.gatewayThreads > 1) {
    try {
      threads = await GatewayThreads.start(mainServes ? config.gatewayThreads - 1 : config.gatewayThreads, { generatedKey: generated, rateBuckets: rateBuckets! }, {
        registry,
        feeds,
        services: {
          ...(store instanceof MemoryStore ? { store } : {}),
          ...(analytics ? { analytics } : {}),
          ...(submitEvents ? { submitEvents } : {}),
        },
        onFailure: (message, descriptor) => {
          // A thread that died gets no more connections (its event loop is gone), and the process
          // stops, so that its supervisor restarts the whole gateway.
          acceptor?.remove(descriptor);
          process.stderr.write(`instock: ${message}; stopping\n`);
          process.kill(process.pid, 'SIGTERM');
        },
      });
      const running = threads;
      closers.unshift(() => running.stop());
      // Last, once every gateway is ready; closed first, before the gateways it hands connections to.
      const accepting = await acceptConnections(config.gatewayHost, config.gatewayPort, [...(gateway ? [gateway.descriptor] : []), ...threads.descriptors]);
      acceptor = accepting;
      closers.unshift(() => accepting.close());
      servedPort = accepting.port;
    } catch (error) {
      await shutdown();
      throw error;
    }
  }

  const sweeper = setInterval(() => {
    void store.expireDue(Date.now(), expiryBatchMax).catch(() => {});
  }, expirySweepMs);
  closers.unshift(() => clearInterval(sweeper));

  const url = `http://${config.gatewayHost}:${servedPort}`;
  const stateFile = join(config.dataDir, 'embedded.json');
  if (role === 'start') {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(stateFile, JSON.stringify({ url, apiKey: generated ?? null, pid: process.pid }));
    chmodSync(stateFile, 0o600);
    closers.push(() => rmSync(stateFile, { force: true }));
  }

  write(`instock ${role === 'start' ? '' : 'gateway '}ready in ${Date.now() - t0} ms on ${url}  (stream: ${kinds.stream}, store: ${kinds.store}, history: ${history ? kinds.history : 'none'}${threads ? `, ${config.gatewayThreads} gateway threads${mainServes ? '' : ' beside the store\'s'}` : ''})`);
  write(`network: ${network.current().locations.length} locations, channels ${network.current().channels.map((c) => c.id).join(', ')}${config.networkFile ? ` from ${config.networkFile} (reloaded on change)` : ' (built-in sample; set NETWORK_FILE for yours)'}`);
  if (generated) write(`API key (every scope; set GATEWAY_API_KEYS for your own): ${generated}`);
  else write(`API keys: ${keys.size} from GATEWAY_API_KEYS`);
  write(`OpenAPI: ${url}/openapi.json   metrics: ${url}/metrics   live stock: ws://${config.gatewayHost}:${servedPort}/v1/live`);
  write('try:');
  write(`  ${firstCurl(url, generated ?? '<your key>', network.current())}`);

  await waitForSignal();
  write('instock: stopping');
  await shutdown();
  return 0;
}
