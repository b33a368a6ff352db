// Gateway threads: `instock gateway` or `instock start` with GATEWAY_THREADS=N serves HTTP and
// WebSockets from N threads on one port: the main thread listens and hands each new connection to
// the next thread in turn (gateway/server.ts, acceptConnections). One thread was the limit of a
// gateway (0.93-0.98 of a core at max throughput).
//
// Each thread has its own network state and expiry watch (and on Redis its own connection), as
// separate gateway processes would. What has to be one is shared or goes through the main thread:
// - rate limits: each key's token bucket is in shared memory (gateway/auth.ts, sharedRateBuckets);
// - feeds: a worker's reservation transitions, changes and samples are posted to the main thread
//   (samples of availability requests gathered for up to 100 ms: one message per request was ~9 %
//   of a thread's time),
//   which sends them on its feeds (Kafka, or in-process listeners);
// - live stock: every change the main thread receives is posted to each worker's live hub;
// - metrics: /metrics on any thread answers the sum over all threads (prom-client's
//   AggregatorRegistry), so a scrape does not depend on which thread it reached.
// - the in-memory store (the embedded default): a thread's store operations run on the main
//   thread's store, and its reads on a copy of the positions in shared memory that the main thread
//   keeps (gateway/thread-store.ts, gateway/positions-mirror.ts); with Redis each thread has its
//   own connection;
// - `instock start`'s analytics and event submission run on the main thread.

import { Worker, type MessagePort } from 'node:worker_threads';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { AtpChange, ReservationTransition } from '../engine/stream/wire.js';
import type { MemoryStore } from '../engine/store/memory-store.js';
import type { GatewayOptions } from './server.js';
import type { AvailabilitySample, GatewayFeeds } from './service.js';
import type { MirrorKnown } from './positions-mirror.js';
import { fromWireError, PositionsServer, storeMethods, wireError, type MainStoreLink, type PositionsReply, type StoreMethod, type WireError } from './thread-store.js';

/** What a worker thread starts with. */
export interface ThreadData {
  /** 1 … N-1 (the main thread is 0). */
  index: number;
  /** The key the main thread generated when GATEWAY_API_KEYS is empty. */
  generatedKey: string | undefined;
  /** Every thread's keys take from the same buckets: a key's rate limit is the process's. */
  rateBuckets: SharedArrayBuffer;
  /** The store is the main thread's (in memory): ask it (ThreadStore), do not open one. */
  mainStore: boolean;
  /** Routes the main thread answers for the threads (`instock start`). */
  analytics: boolean;
  submitEvents: boolean;
}

/** What the main thread runs for its workers (see ThreadData). */
export interface MainServices {
  /** The in-memory store, when the workers use the main thread's (and read its copy of the positions). */
  store?: MemoryStore;
  analytics?: GatewayOptions['analytics'];
  submitEvents?: GatewayOptions['submitEvents'];
}

type Analytics = NonNullable<GatewayOptions['analytics']>;
type SubmitEvents = NonNullable<GatewayOptions['submitEvents']>;

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

type ToWorker =
  | { type: 'changes'; changes: AtpChange[] }
  | { type: 'metricsJson'; id: number }
  | { type: 'metricsText'; id: number; text: string }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'failure'; id: number; error: WireError }
  | { type: 'stop' };

/** What a worker asks the main thread to run (answered by result or failure). */
type Request =
  | { type: 'store'; method: StoreMethod; args: unknown[] }
  | { type: 'positions'; skus: string[]; nowMs: number; known: MirrorKnown }
  | { type: 'analytics'; query: Parameters<Analytics>[0] }
  | { type: 'submitEvents'; events: unknown[] };

type ToMain =
  | { type: 'ready'; descriptor: number }
  | { type: 'transitions'; transitions: ReservationTransition[] }
  | { type: 'changes'; changes: AtpChange[] }
  | { type: 'samples'; samples: AvailabilitySample[] }
  | { type: 'metricsJson'; id: number; json: MetricsJson }
  | { type: 'metricsText'; id: number }
  | { type: 'request'; id: number; request: Request };

/** A thread's availability samples wait at most this long, or this many, before they are posted. */
const samplesWaitMs = 100;
const samplesMax = 1_000;

/** How long a scrape waits for the threads' metrics before answering with what it has. */
const metricsWaitMs = 2_000;

/** The main thread's side: starts the workers, relays their feeds, sums their metrics. */
export class GatewayThreads {
  private readonly workers: Worker[] = [];
  /** Each worker's gateway, for the acceptor to hand connections to (in the order they were ready). */
  readonly descriptors: number[] = [];
  private nextId = 0;
  private readonly pendingJson = new Map<number, { left: number; json: MetricsJson[]; done: () => void }>();
  private stopping = false;
  private readonly positions: PositionsServer | undefined;

  private constructor(
    private readonly registry: Registry,
    private readonly feeds: GatewayFeeds,
    /** A worker failed or exited while serving; `descriptor`: its gateway's, which must get no more connections. */
    private readonly onFailure: (message: string, descriptor: number) => void,
    private readonly services: MainServices,
  ) {
    this.positions = services.store ? new PositionsServer(services.store) : undefined;
  }

  /** Starts `count` worker threads (cli/gateway-thread.js) and resolves once each is serving. */
  static async start(count: number, data: Pick<ThreadData, 'generatedKey' | 'rateBuckets'>, deps: { registry: Registry; feeds: GatewayFeeds; services: MainServices; onFailure: (message: string, descriptor: number) => void }): Promise<GatewayThreads> {
    const threads = new GatewayThreads(deps.registry, deps.feeds, deps.onFailure, deps.services);
    const services = { mainStore: deps.services.store !== undefined, analytics: deps.services.analytics !== undefined, submitEvents: deps.services.submitEvents !== undefined };
    try {
      await Promise.all(Array.from({ length: count }, (_, k) => threads.spawn({ ...data, ...services, index: k + 1 })));
    } catch (error) {
      threads.stopping = true;
      await Promise.all(threads.workers.map((worker) => worker.terminate()));
      throw error;
    }
    return threads;
  }

  get size(): number {
    return this.workers.length;
  }

  private spawn(data: ThreadData): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(new URL('../cli/gateway-thread.js', import.meta.url), { workerData: data });
      let ready = false;
      let descriptor = 0;
      worker.on('message', (message: ToMain) => {
        if (message.type === 'ready') {
          ready = true;
          descriptor = message.descriptor;
          this.descriptors.push(descriptor);
          resolve();
        } else this.fromWorker(worker, message);
      });
      worker.on('error', (error) => {
        if (!ready) reject(error);
        else this.onFailure(`gateway thread ${data.index} failed: ${error.message}`, descriptor);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new Error(`gateway thread ${data.index} exited with ${code} before serving`));
        else if (!this.stopping) this.onFailure(`gateway thread ${data.index} exited with ${code}`, descriptor);
      });
      this.workers.push(worker);
    });
  }

  private fromWorker(worker: Worker, message: ToMain): void {
    switch (message.type) {
      case 'transitions':
        this.feeds.transitions(message.transitions);
        return;
      case 'changes':
        this.feeds.changes(message.changes);
        return;
      case 'samples':
        for (const sample of message.samples) this.feeds.availabilitySample?.(sample);
        return;
      case 'metricsJson': {
        const pending = this.pendingJson.get(message.id);
        if (!pending) return;
        pending.json.push(message.json);
        if (--pending.left === 0) pending.done();
        return;
      }
      case 'metricsText':
        void this.metricsText().then((text) => worker.postMessage({ type: 'metricsText', id: message.id, text } satisfies ToWorker));
        return;
      case 'request': {
        const id = message.id;
        this.run(message.request).then(
          ({ value, transfer }) => worker.postMessage({ type: 'result', id, value } satisfies ToWorker, transfer),
          (error: unknown) => worker.postMessage({ type: 'failure', id, error: wireError(error) } satisfies ToWorker),
        );
        return;
      }
    }
  }

  /** A worker's request, run here; `transfer`: what its answer moves rather than copies. */
  private async run(request: Request): Promise<{ value: unknown; transfer?: ArrayBuffer[] }> {
    const { store, analytics, submitEvents } = this.services;
    switch (request.type) {
      case 'positions': {
        if (!this.positions) throw new Error('this gateway has no main-thread store');
        const reply = await this.positions.read(request.skus, request.nowMs, request.known);
        return { value: reply, transfer: [reply.data.buffer as ArrayBuffer, reply.numbers.buffer as ArrayBuffer] };
      }
      case 'store': {
        if (!store || !storeMethods.includes(request.method)) throw new Error(`no store method ${request.method} on the main thread`);
        const method = store[request.method] as (...args: unknown[]) => Promise<unknown>;
        return { value: await method.apply(store, request.args) };
      }
      case 'analytics':
        if (!analytics) throw new Error('this gateway has no analytics');
        return { value: await analytics(request.query) };
      case 'submitEvents':
        if (!submitEvents) throw new Error('this gateway takes no events');
        return { value: await submitEvents(request.events) };
    }
  }

  /** Changes the main thread received (its feed, or a worker's holds): to every worker's live hub. */
  broadcastChanges(changes: AtpChange[]): void {
    for (const worker of this.workers) worker.postMessage({ type: 'changes', changes } satisfies ToWorker);
  }

  /** The exposition text of every thread's metrics, summed; a thread that does not answer in time is left out. */
  async metricsText(): Promise<string> {
    const own = await this.registry.getMetricsAsJSON();
    const id = this.nextId++;
    const json: MetricsJson[] = [own];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.pendingJson.delete(id);
        resolve();
      }, metricsWaitMs);
      this.pendingJson.set(id, {
        left: this.workers.length,
        json,
        done: () => {
          clearTimeout(timer);
          this.pendingJson.delete(id);
          resolve();
        },
      });
      for (const worker of this.workers) worker.postMessage({ type: 'metricsJson', id } satisfies ToWorker);
    });
    return AggregatorRegistry.aggregate(json).metrics();
  }

  /** Asks every worker to close its gateway and waits for them to exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void worker.terminate(), 10_000);
            worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            worker.postMessage({ type: 'stop' } satisfies ToWorker);
          }),
      ),
    );
  }
}

/**
 * A worker thread's side: its feeds go to the main thread, live changes and stop come from it, and
 * what runs on the main thread (its store, analytics, event submission) is asked through it.
 */
export class ThreadLink implements MainStoreLink {
  private nextId = 0;
  private readonly pendingText = new Map<number, (text: string) => void>();
  private readonly pendingRequests = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void }>();
  private changeListener: (changes: AtpChange[]) => void = () => {};
  private registry: Registry | undefined;
  readonly stopped: Promise<void>;

  readonly feeds: GatewayFeeds = {
    transitions: (transitions) => this.post({ type: 'transitions', transitions }),
    changes: (changes) => this.post({ type: 'changes', changes }),
    availabilitySample: (sample) => {
      if (this.samples.push(sample) === 1) this.samplesTimer = setTimeout(this.postSamples, samplesWaitMs);
      else if (this.samples.length >= samplesMax) this.postSamples();
    },
  };

  private samples: AvailabilitySample[] = [];
  private samplesTimer: NodeJS.Timeout | undefined;

  private readonly postSamples = (): void => {
    clearTimeout(this.samplesTimer);
    if (this.samples.length === 0) return;
    this.post({ type: 'samples', samples: this.samples });
    this.samples = [];
  };

  constructor(private readonly port: MessagePort) {
    let stop: () => void = () => {};
    this.stopped = new Promise((resolve) => (stop = resolve));
    port.on('message', (message: ToWorker) => {
      switch (message.type) {
        case 'changes':
          this.changeListener(message.changes);
          return;
        case 'metricsJson':
          void (this.registry?.getMetricsAsJSON() ?? Promise.resolve([])).then((json) => this.post({ type: 'metricsJson', id: message.id, json }));
          return;
        case 'metricsText':
          this.pendingText.get(message.id)?.(message.text);
          this.pendingText.delete(message.id);
          return;
        case 'result':
        case 'failure': {
          const pending = this.pendingRequests.get(message.id);
          this.pendingRequests.delete(message.id);
          if (message.type === 'result') pending?.resolve(message.value);
          else pending?.reject(fromWireError(message.error));
          return;
        }
        case 'stop':
          this.postSamples();
          stop();
          return;
      }
    });
  }

  private post(message: ToMain): void {
    this.port.postMessage(message);
  }

  private request(request: Request): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pendingRequests.set(id, { resolve, reject });
      this.post({ type: 'request', id, request });
    });
  }

  call(method: StoreMethod, args: unknown[]): Promise<unknown> {
    return this.request({ type: 'store', method, args });
  }

  readPositions(skus: string[], nowMs: number, known: MirrorKnown): Promise<PositionsReply> {
    return this.request({ type: 'positions', skus, nowMs, known }) as Promise<PositionsReply>;
  }

  readonly analytics: Analytics = (query) => this.request({ type: 'analytics', query }) as ReturnType<Analytics>;
  readonly submitEvents: SubmitEvents = (events) => this.request({ type: 'submitEvents', events }) as ReturnType<SubmitEvents>;

  /** This thread's metrics, which the main thread adds to its own and the other threads'. */
  serveMetrics(registry: Registry): void {
    this.registry = registry;
  }

  onChanges(listener: (changes: AtpChange[]) => void): void {
    this.changeListener = listener;
  }

  /** Every thread's metrics, summed by the main thread. */
  metricsText(): Promise<string> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pendingText.set(id, resolve);
      this.post({ type: 'metricsText', id });
    });
  }

  /** This thread serves: `descriptor` is its gateway's (RunningGateway.descriptor). */
  ready(descriptor: number): void {
    this.post({ type: 'ready', descriptor });
  }
}
