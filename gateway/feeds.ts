// Where the gateway's side effects go, and where its live stock comes from.
//
// - Embedded default (`LocalFeeds`): in-process listeners: the live hub, velocity, history.
// - With Kafka (`KafkaFeeds`): reservation transitions and reservation-caused ATP changes are
//   produced to inventory.reservations and inventory.changes; the gateway reads inventory.changes
//   in a consumer group of its own (every gateway sees every change) for WebSocket fan-out.
//
// Both are best effort with bounds: a send that fails is counted and dropped, never retried
// inside a request. ATP itself is never at stake here: it lives in the store.

import { hostname } from 'node:os';
import type { Consumer, KafkaClient, Producer } from '../connectors/kafka.js';
import { decodeAtpChange, encodeAtpChange, encodeReservationTransition, type AtpChange, type ReservationTransition } from '../engine/stream/wire.js';
import type { AvailabilitySample, GatewayFeeds } from './service.js';

export class LocalFeeds implements GatewayFeeds {
  private readonly transitionListeners = new Set<(t: ReservationTransition[]) => void>();
  private readonly changeListeners = new Set<(c: AtpChange[]) => void>();
  private readonly sampleListeners = new Set<(s: AvailabilitySample) => void>();

  transitions(transitions: ReservationTransition[]): void {
    for (const listener of this.transitionListeners) listener(transitions);
  }

  changes(changes: AtpChange[]): void {
    for (const listener of this.changeListeners) listener(changes);
  }

  availabilitySample(sample: AvailabilitySample): void {
    for (const listener of this.sampleListeners) listener(sample);
  }

  onTransitions(listener: (t: ReservationTransition[]) => void): void {
    this.transitionListeners.add(listener);
  }

  onChanges(listener: (c: AtpChange[]) => void): void {
    this.changeListeners.add(listener);
  }

  onSample(listener: (s: AvailabilitySample) => void): void {
    this.sampleListeners.add(listener);
  }
}

/** Messages waiting for Kafka at most; past it new ones are dropped and counted. */
const inFlightMax = 10_000;

export class KafkaFeeds implements GatewayFeeds {
  private producer: Producer | undefined;
  private consumer: Consumer | undefined;
  private inFlight = 0;
  dropped = 0;

  constructor(
    private readonly kafka: KafkaClient,
    private readonly topics: { changes: string; reservations: string },
    private readonly log: (message: string) => void,
  ) {}

  /** Connects the producer and, when `onChanges` is given, a consumer of the change feed from now on. */
  async start(onChanges?: (changes: AtpChange[]) => void): Promise<void> {
    this.producer = this.kafka.producer({ kafkaJS: { acks: -1, idempotent: true }, 'linger.ms': 5 } as never);
    await this.producer.connect();
    if (!onChanges) return;
    // A group per gateway process: each gateway must see every change for its own clients.
    this.consumer = this.kafka.consumer({ kafkaJS: { groupId: `instock-gateway-${hostname()}-${process.pid}`, fromBeginning: false, autoCommit: true } } as never);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topics.changes] });
    await this.consumer.run({
      eachBatch: async ({ batch }) => {
        const changes: AtpChange[] = [];
        for (const message of batch.messages) {
          const change = decodeAtpChange(message.value);
          if (change) changes.push(change);
        }
        if (changes.length > 0) onChanges(changes);
      },
    });
  }

  private send(topic: string, messages: { key: string; value: Buffer }[]): void {
    if (!this.producer || messages.length === 0) return;
    if (this.inFlight + messages.length > inFlightMax) {
      this.dropped += messages.length;
      return;
    }
    this.inFlight += messages.length;
    this.producer
      .send({ topic, messages })
      .catch((error: unknown) => {
        this.dropped += messages.length;
        this.log(`gateway: ${messages.length} message(s) to ${topic} dropped: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => {
        this.inFlight -= messages.length;
      });
  }

  transitions(transitions: ReservationTransition[]): void {
    this.send(this.topics.reservations, transitions.map((t) => ({ key: t.reservationId, value: encodeReservationTransition(t) })));
  }

  changes(changes: AtpChange[]): void {
    this.send(this.topics.changes, changes.map((c) => ({ key: c.sku, value: encodeAtpChange(c) })));
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    await this.producer?.flush({ timeout: 5_000 }).catch(() => {});
    await this.producer?.disconnect();
  }
}
