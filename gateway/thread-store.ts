// The main thread's store, seen from a gateway thread (gateway/threads.ts). The in-memory store
// of the embedded default lives in the main thread, where the in-process stream applies events to
// it: a gateway thread cannot hold a copy (it would be another inventory), so it asks the main
// thread, which runs each operation on the store to completion, as atomic as in one thread.
//
// - Reads for availability (forEachPosition, ~500 positions a basket) are the hot path: every read
//   a thread asks in one event-loop turn goes in one message, and the answer is one Float64Array
//   (moved, not copied) of [count, then (location, onHand, reserved) per position] per SKU, with
//   locations as numbers in a list the main thread keeps and sends again only when it grows.
// - Everything else (holds, transitions, statuses, …) is one message per call, its result cloned.
//
// Errors cross as their fields (wireError) and are rebuilt as the classes the gateway maps to
// statuses: a DomainError from the main thread's store is the same 4xx as in one thread.

import { DomainError, InvariantError, type DomainErrorCode } from '../engine/core/errors.js';
import { checkId } from '../engine/store/validate.js';
import { TurnBatch } from '../engine/store/turn-batch.js';
import type { InventoryStore, PositionVisitor } from '../engine/store/types.js';
import { HttpProblem } from './http.js';

/** The store operations a thread may ask for, other than forEachPosition. */
export const storeMethods = ['applyEvents', 'positions', 'positionsMany', 'hold', 'transition', 'reservation', 'heldUntil', 'claimExpiryNotice', 'expireDue', 'locationStatuses', 'setLocationStatus'] as const;
export type StoreMethod = (typeof storeMethods)[number];

/** What answers a batch of reads: see the file's comment. `names` only when the thread's list is behind. */
export interface PositionsReply {
  data: Float64Array;
  namesVersion: number;
  names?: string[];
}

/** An error as it crosses threads (structured clone keeps an Error's message, not its class or fields). */
export interface WireError {
  name: string;
  message: string;
  code?: DomainErrorCode;
  status?: number;
  title?: string;
  extensions?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Where it was thrown, for the log of an unexpected one. */
  stack?: string;
}

export function wireError(error: unknown): WireError {
  if (error instanceof HttpProblem) return { name: error.name, message: error.detail, status: error.status, title: error.title, extensions: error.extensions, headers: error.headers };
  if (error instanceof DomainError) return { name: error.name, message: error.message, code: error.code };
  if (error instanceof Error) return { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { name: 'Error', message: String(error) };
}

export function fromWireError(wire: WireError): Error {
  if (wire.status !== undefined) return new HttpProblem(wire.status, wire.title ?? 'Bad Request', wire.message, wire.extensions, wire.headers);
  if (wire.code !== undefined) return new DomainError(wire.code, wire.message);
  const error = wire.name === 'InvariantError' ? new InvariantError(wire.message) : new Error(wire.message);
  error.name = wire.name;
  if (wire.stack) error.stack = `${wire.stack}\n    (on the main thread)`;
  return error;
}

/** The main thread's side: answers a thread's reads from the store, numbering locations. */
export class PositionsServer {
  /** Every location id ever seen in a network (a new map when one is added: the store keys its column memory by the map). */
  private index = new Map<string, number>();
  private readonly names: string[] = [];
  private lastNetwork: unknown;

  constructor(
    private readonly store: InventoryStore,
    private readonly locations: () => { id: string }[],
  ) {}

  private refreshIndex(): void {
    const locations = this.locations();
    if (locations === this.lastNetwork) return;
    this.lastNetwork = locations;
    let grown: Map<string, number> | undefined;
    for (const { id } of locations) {
      if (this.index.has(id) || grown?.has(id)) continue;
      grown ??= new Map(this.index);
      grown.set(id, this.names.length);
      this.names.push(id);
    }
    if (grown) this.index = grown;
  }

  /** The reply's data is a view on a buffer of its own, for the caller to move to the thread. */
  async read(skus: string[], nowMs: number, namesVersion: number): Promise<PositionsReply> {
    this.refreshIndex();
    // Sized for ~the network's locations per SKU; grown if a SKU has more.
    let data = new Float64Array(skus.length * (1 + 3 * Math.max(8, this.names.length)));
    let at = 0;
    let countAt = -1;
    const ensure = (more: number) => {
      if (at + more <= data.length) return;
      const bigger = new Float64Array(Math.max(data.length * 2, at + more));
      bigger.set(data.subarray(0, at));
      data = bigger;
    };
    let line = -1;
    await this.store.forEachPosition(skus, nowMs, this.index, (l, column, onHand, reserved) => {
      // Positions come SKU by SKU (a SKU's count first, then its positions).
      while (line < l) {
        ensure(1);
        line += 1;
        countAt = at;
        data[at++] = 0;
      }
      ensure(3);
      data[countAt] = data[countAt]! + 1;
      data[at++] = column;
      data[at++] = onHand;
      data[at++] = reserved;
    });
    while (line < skus.length - 1) {
      ensure(1);
      line += 1;
      data[at++] = 0;
    }
    const reply: PositionsReply = { data: data.subarray(0, at), namesVersion: this.names.length };
    if (namesVersion !== this.names.length) reply.names = this.names.slice();
    return reply;
  }
}

/** How a thread reaches the main thread (ThreadLink). */
export interface MainStoreLink {
  call(method: StoreMethod, args: unknown[]): Promise<unknown>;
  readPositions(skus: string[], nowMs: number, namesVersion: number): Promise<PositionsReply>;
}

/** A batch of reads at most: one message's SKUs (a basket has at most 100 lines, a PLP call 500). */
const batchSkusMax = 2_000;

/** A caller's part of a batch's reply: the reply, and where its first SKU's count is. */
interface ReadPart {
  data: Float64Array;
  at: number;
}

/** Each caller's part starts where the SKUs before it end (TurnBatch's split). */
function readParts(data: Float64Array, counts: number[]): ReadPart[] {
  const parts: ReadPart[] = [];
  let o = 0;
  for (const count of counts) {
    parts.push({ data, at: o });
    for (let line = 0; line < count; line++) o += 1 + 3 * data[o]!;
  }
  return parts;
}

/** A gateway thread's store: the main thread's, through `link`. */
export class ThreadStore implements InventoryStore {
  readonly kind = 'memory' as const;
  /** Reads asked in one turn go in one message (engine/store/turn-batch.ts). */
  private readonly reads = new TurnBatch<Float64Array, ReadPart>(batchSkusMax, (skus) => this.readBatch(skus), readParts);
  /** The latest clock of the callers of the batch being gathered. */
  private pendingNowMs = 0;
  private names: string[] = [];
  /** The main thread's location numbers → the caller's columns, per columns map and names version. */
  private readonly columnsOf = new WeakMap<ReadonlyMap<string, number>, { version: number; byIndex: Int32Array }>();

  constructor(private readonly link: MainStoreLink) {}

  private ask<T>(method: StoreMethod, args: unknown[]): Promise<T> {
    return this.link.call(method, args) as Promise<T>;
  }

  applyEvents: InventoryStore['applyEvents'] = (events, nowMs) => this.ask('applyEvents', nowMs === undefined ? [events] : [events, nowMs]);
  positions: InventoryStore['positions'] = (sku, nowMs) => this.ask('positions', [sku, nowMs]);
  positionsMany: InventoryStore['positionsMany'] = (skus, nowMs) => this.ask('positionsMany', [skus, nowMs]);
  hold: InventoryStore['hold'] = (request) => this.ask('hold', [request]);
  transition: InventoryStore['transition'] = (id, transition, nowMs) => this.ask('transition', [id, transition, nowMs]);
  reservation: InventoryStore['reservation'] = (id, nowMs) => this.ask('reservation', [id, nowMs]);
  heldUntil: InventoryStore['heldUntil'] = (untilMs, limit) => this.ask('heldUntil', [untilMs, limit]);
  claimExpiryNotice: InventoryStore['claimExpiryNotice'] = (id) => this.ask('claimExpiryNotice', [id]);
  expireDue: InventoryStore['expireDue'] = (nowMs, limit) => this.ask('expireDue', limit === undefined ? [nowMs] : [nowMs, limit]);
  locationStatuses: InventoryStore['locationStatuses'] = () => this.ask('locationStatuses', []);
  setLocationStatus: InventoryStore['setLocationStatus'] = (id, status) => this.ask('setLocationStatus', [id, status]);

  /** The main thread's store stays open: it is the main thread's to close. */
  async close(): Promise<void> {}

  async forEachPosition(skus: string[], nowMs: number, columns: ReadonlyMap<string, number>, visit: PositionVisitor): Promise<void> {
    // Checked here: one bad SKU must fail its own request, not the batch it would travel in.
    for (const sku of skus) checkId('sku', sku);
    // The batch reads at the latest clock of its callers (a hold due by then is released first).
    this.pendingNowMs = Math.max(this.pendingNowMs, nowMs);
    const { data, at } = await this.reads.get(skus);
    const byIndex = this.columnsFor(columns);
    let o = at;
    for (let line = 0; line < skus.length; line++) {
      const count = data[o++]!;
      for (let k = 0; k < count; k++) {
        const index = data[o]!;
        visit(line, index < 0 ? -1 : byIndex[index]!, data[o + 1]!, data[o + 2]!);
        o += 3;
      }
    }
  }

  private columnsFor(columns: ReadonlyMap<string, number>): Int32Array {
    const known = this.columnsOf.get(columns);
    if (known !== undefined && known.version === this.names.length) return known.byIndex;
    const byIndex = new Int32Array(this.names.length);
    for (let i = 0; i < this.names.length; i++) byIndex[i] = columns.get(this.names[i]!) ?? -1;
    this.columnsOf.set(columns, { version: this.names.length, byIndex });
    return byIndex;
  }

  /** Sends a batch: its clock is taken (and the next batch's started) before the first await. */
  private async readBatch(skus: string[]): Promise<Float64Array> {
    const nowMs = this.pendingNowMs;
    this.pendingNowMs = 0;
    const reply = await this.link.readPositions(skus, nowMs, this.names.length);
    if (reply.names) this.names = reply.names;
    return reply.data;
  }
}
