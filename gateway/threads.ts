// Gateway threads: `instock gateway` with GATEWAY_THREADS=N serves HTTP and WebSockets from N
// threads on one port (uWebSockets.js listens with SO_REUSEPORT: the kernel spreads connections
// over them). One thread was the limit of a gateway (0.93-0.98 of a core at max throughput).
//
// Each thread has its own store connection, network state, rate-limit buckets and expiry watch,
// as separate gateway processes would. What has to be one goes through the main thread:
// - feeds: a worker's reservation transitions, changes and samples are posted to the main thread,
//   which sends them on its feeds (Kafka, or in-process listeners);
// - live stock: every change the main thread receives is posted to each worker's live hub;
// - metrics: /metrics on any thread answers the sum over all threads (prom-client's
//   AggregatorRegistry), so a scrape does not depend on which thread it reached.
// Threads need a shared store (Redis): each in-memory store would be a different inventory.

import { createServer } from 'node:net';
import { Worker, type MessagePort } from 'node:worker_threads';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { AtpChange, ReservationTransition } from '../engine/stream/wire.js';
import type { AvailabilitySample, GatewayFeeds } from './service.js';

/** What a worker thread starts with. */
export interface ThreadData {
  /** 1 … N-1 (the main thread is 0). */
  index: number;
  /** The port the main thread bound (GATEWAY_PORT may be 0). */
  port: number;
  /** The key the main thread generated when GATEWAY_API_KEYS is empty. */
  generatedKey: string | undefined;
}

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

type ToWorker = { type: 'changes'; changes: AtpChange[] } | { type: 'metricsJson'; id: number } | { type: 'metricsText'; id: number; text: string } | { type: 'stop' };

type ToMain =
  | { type: 'ready' }
  | { type: 'transitions'; transitions: ReservationTransition[] }
  | { type: 'changes'; changes: AtpChange[] }
  | { type: 'sample'; sample: AvailabilitySample }
  | { type: 'metricsJson'; id: number; json: MetricsJson }
  | { type: 'metricsText'; id: number };

/**
 * A free port for every thread to listen on: uWebSockets.js shares a port between listeners only
 * when it is named (with port 0 each thread's listen would get its own, or fail).
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** How long a scrape waits for the threads' metrics before answering with what it has. */
const metricsWaitMs = 2_000;

/** The main thread's side: starts the workers, relays their feeds, sums their metrics. */
export class GatewayThreads {
  private readonly workers: Worker[] = [];
  private nextId = 0;
  private readonly pendingJson = new Map<number, { left: number; json: MetricsJson[]; done: () => void }>();
  private stopping = false;

  private constructor(
    private readonly registry: Registry,
    private readonly feeds: GatewayFeeds,
    private readonly onFailure: (message: string) => void,
  ) {}

  /** Starts `count` worker threads (cli/gateway-thread.js) and resolves once each is serving. */
  static async start(count: number, data: Omit<ThreadData, 'index'>, deps: { registry: Registry; feeds: GatewayFeeds; onFailure: (message: string) => void }): Promise<GatewayThreads> {
    const threads = new GatewayThreads(deps.registry, deps.feeds, deps.onFailure);
    try {
      await Promise.all(Array.from({ length: count }, (_, k) => threads.spawn({ ...data, index: k + 1 })));
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
      worker.on('message', (message: ToMain) => {
        if (message.type === 'ready') {
          ready = true;
          resolve();
        } else this.fromWorker(worker, message);
      });
      worker.on('error', (error) => {
        if (!ready) reject(error);
        else this.onFailure(`gateway thread ${data.index} failed: ${error.message}`);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new Error(`gateway thread ${data.index} exited with ${code} before serving`));
        else if (!this.stopping) this.onFailure(`gateway thread ${data.index} exited with ${code}`);
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
      case 'sample':
        this.feeds.availabilitySample?.(message.sample);
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

/** A worker thread's side: its feeds go to the main thread, live changes and stop come from it. */
export class ThreadLink {
  private nextId = 0;
  private readonly pendingText = new Map<number, (text: string) => void>();
  private changeListener: (changes: AtpChange[]) => void = () => {};
  private registry: Registry | undefined;
  readonly stopped: Promise<void>;

  readonly feeds: GatewayFeeds = {
    transitions: (transitions) => this.post({ type: 'transitions', transitions }),
    changes: (changes) => this.post({ type: 'changes', changes }),
    availabilitySample: (sample) => this.post({ type: 'sample', sample }),
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
        case 'stop':
          stop();
          return;
      }
    });
  }

  private post(message: ToMain): void {
    this.port.postMessage(message);
  }

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

  ready(): void {
    this.post({ type: 'ready' });
  }
}
