// The main thread's store, seen from a gateway thread (gateway/threads.ts). The in-memory store
// of the embedded default lives in the main thread, where the in-process stream applies events to
// it: a gateway thread cannot hold a store of its own (it would be another inventory), so every
// operation that changes the store is asked of the main thread, which runs it to completion, as
// atomic as in one thread.
//
// - Reads for availability (readRows, forEachPosition: ~500 positions a basket) are the hot path: a
//   thread reads them from the copy in shared memory that the main thread keeps as the store changes
//   (gateway/positions-mirror.ts), and keeps each SKU's channel rows until the SKU is written again.
//   What the copy cannot answer (a SKU's first read, a hold due) is
//   asked of the main thread: every such read of one event-loop turn goes in one message, and the
//   answer is one Float64Array (moved, not copied) of [count, then (location, onHand, reserved)
//   per position] per SKU, locations as the copy numbers them.
// - Everything else (holds, transitions, statuses, …) is one message per call, its result cloned.
//
// Errors cross as their fields (wireError) and are rebuilt as the classes the gateway maps to
// statuses: a DomainError from the main thread's store is the same 4xx as in one thread.

import { DomainError, InvariantError, type DomainErrorCode } from '../engine/core/errors.js';
import { checkId } from '../engine/store/validate.js';
import { TurnBatch } from '../engine/store/turn-batch.js';
import type { MemoryStore } from '../engine/store/memory-store.js';
import type { InventoryStore, PositionVisitor, RowCells } from '../engine/store/types.js';
import { HttpProblem } from './http.js';
import { MirrorReader, PositionsMirror, type MirrorKnown, type MirrorUpdate } from './positions-mirror.js';

/** The store operations a thread may ask for, other than the reads of positions (forEachPosition, readRows). */
export const storeMethods = ['applyEvents', 'positions', 'positionsMany', 'hold', 'transition', 'reservation', 'heldUntil', 'claimExpiryNotice', 'expireDue', 'locationStatuses', 'setLocationStatus'] as const;
export type StoreMethod = (typeof storeMethods)[number];

/** What answers a batch of reads: see the file's comment; and what the thread's copy lacked. */
export interface PositionsReply extends MirrorUpdate {
  data: Float64Array;
  /** Each SKU's number in the copy (-1: none yet). */
  numbers: Int32Array;
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

/** The main thread's side: answers what a thread's copy of the positions could not, and keeps that copy. */
export class PositionsServer {
  readonly mirror: PositionsMirror;

  constructor(private readonly store: MemoryStore) {
    this.mirror = new PositionsMirror(store);
  }

  /** The reply's data and numbers are views on buffers of their own, for the caller to move to the thread. */
  async read(skus: string[], nowMs: number, known: MirrorKnown): Promise<PositionsReply> {
    // Sized for ~the locations per SKU; grown if a SKU has more.
    let data = new Float64Array(skus.length * (1 + 3 * Math.max(8, this.mirror.locations.size)));
    let at = 0;
    let countAt = -1;
    const ensure = (more: number) => {
      if (at + more <= data.length) return;
      const bigger = new Float64Array(Math.max(data.length * 2, at + more));
      bigger.set(data.subarray(0, at));
      data = bigger;
    };
    let line = -1;
    await this.store.forEachPosition(skus, nowMs, this.mirror.locations, (l, column, onHand, reserved) => {
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
    const numbers = new Int32Array(skus.length);
    for (let k = 0; k < skus.length; k++) numbers[k] = this.mirror.skuNumber(skus[k]!);
    // Taken after the read: the read may have released holds, and the copy is written as it ends.
    return { data: data.subarray(0, at), numbers, ...this.mirror.update(known) };
  }
}

/** How a thread reaches the main thread (ThreadLink). */
export interface MainStoreLink {
  call(method: StoreMethod, args: unknown[]): Promise<unknown>;
  readPositions(skus: string[], nowMs: number, known: MirrorKnown): Promise<PositionsReply>;
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
  /** Reads the copy could not answer, asked in one turn, go in one message (engine/store/turn-batch.ts). */
  private readonly reads = new TurnBatch<Float64Array, ReadPart>(batchSkusMax, (skus) => this.readBatch(skus), readParts);
  /** The latest clock of the callers of the batch being gathered. */
  private pendingNowMs = 0;
  private readonly mirror = new MirrorReader();

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
    const byNumber = this.mirror.columnsFor(columns);
    let missed: number[] | undefined;
    for (let line = 0; line < skus.length; line++) {
      if (!this.mirror.read(skus[line]!, line, nowMs, byNumber, visit)) (missed ??= []).push(line);
    }
    if (missed !== undefined) await this.readFromMain(skus, missed, nowMs, columns, visit);
  }

  async readRows(skus: string[], nowMs: number, cells: RowCells): Promise<(Float64Array | undefined)[]> {
    for (const sku of skus) checkId('sku', sku);
    const byNumber = this.mirror.columnsFor(cells.columns);
    const rows: (Float64Array | undefined)[] = [];
    let missed: number[] | undefined;
    for (let line = 0; line < skus.length; line++) {
      const row = this.mirror.row(skus[line]!, nowMs, cells, byNumber);
      if (row === false) (missed ??= []).push(line);
      rows.push(row === false ? undefined : row);
    }
    if (missed !== undefined) {
      // Rows of their own (not kept): the copy will have these SKUs for the next read.
      await this.readFromMain(skus, missed, nowMs, cells.columns, (line, c, onHand, reserved) => {
        const row = (rows[line] ??= new Float64Array(cells.width));
        if (c >= 0) row[c] = cells.cell(c, onHand, reserved);
      });
    }
    return rows;
  }

  /** Visits the positions of the SKUs at `lines` as the main thread's store answers (one batch per turn). */
  private async readFromMain(skus: string[], lines: number[], nowMs: number, columns: ReadonlyMap<string, number>, visit: PositionVisitor): Promise<void> {
    // The batch reads at the latest clock of its callers (a hold due by then is released first).
    this.pendingNowMs = Math.max(this.pendingNowMs, nowMs);
    const { data, at } = await this.reads.get(lines.map((line) => skus[line]!));
    // The answer may have named new locations.
    const byNumber = this.mirror.columnsFor(columns);
    let o = at;
    for (const line of lines) {
      const count = data[o++]!;
      for (let k = 0; k < count; k++) {
        const number = data[o]!;
        visit(line, number < 0 ? -1 : byNumber[number]!, data[o + 1]!, data[o + 2]!);
        o += 3;
      }
    }
  }

  /** Sends a batch: its clock is taken (and the next batch's started) before the first await. */
  private async readBatch(skus: string[]): Promise<Float64Array> {
    const nowMs = this.pendingNowMs;
    this.pendingNowMs = 0;
    const reply = await this.link.readPositions(skus, nowMs, this.mirror.known);
    this.mirror.learn(reply, skus, reply.numbers);
    return reply.data;
  }
}
