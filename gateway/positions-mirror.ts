// A copy of the in-memory store's positions in shared memory, which gateway threads read without
// asking the main thread. The store stays the main thread's (gateway/thread-store.ts); asking it for
// every basket's ~500 positions cost a message each way per batch: ~10 µs of a thread's time per
// request and ~22 µs of the main thread's, a fifth of a request's CPU on two threads.
//
// The main thread writes (PositionsMirror): the store tells it of every SKU an operation changed
// as the operation ends (MemoryStore.watch), before the operation's answer is posted, so a thread
// that placed a hold reads its effect. A thread reads (MirrorReader) under a per-SKU sequence
// number (a seqlock): odd while the main thread writes the SKU, and a read that saw it move is
// read again. What the copy cannot answer goes to the main thread as before (`read`):
// - a SKU the thread has not been told the number of (its first read; a SKU with no positions);
// - a SKU with a hold due: the store releases it as it reads (the copy carries each SKU's earliest
//   held-line expiry), so a lapsed hold never shows as reserved;
// - a SKU whose positions moved to memory the thread has not been sent yet, or that a write kept
//   busy for longer than a few tries.
//
// Layout. SKUs are numbered in order of first write; each has three Int32 in a header segment
// (sequence, data segment, offset) and a region in a data segment (Float64: earliest hold expiry,
// count, then location number, onHand, reserved per position). A SKU that outgrows its region
// gets a new one (positions are never removed, so this is rare); segments are added, never moved,
// and sent to each thread with the next answer it gets from the main thread. Locations are numbered
// as the store shows them; the names go along when the thread's list is behind.

import type { MemoryStore, PositionCells } from '../engine/store/memory-store.js';
import { KeptRows } from '../engine/store/kept-rows.js';
import type { PositionVisitor, RowCells } from '../engine/store/types.js';

/** SKUs per header segment (3 Int32 each: 768 KiB). */
const headerSkus = 1 << 16;
const headerShift = 16;
/** Float64 per data segment (8 MiB): ~20,000 SKUs at 40 locations each. */
const dataSegmentLength = 1 << 20;
/** Reads of a SKU a write keeps changing before the thread asks the main thread instead. */
const readTries = 32;

/** What a thread is missing of the copy, sent with an answer of the main thread. */
export interface MirrorUpdate {
  names?: string[];
  headers?: SharedArrayBuffer[];
  segments?: SharedArrayBuffer[];
}

/** How much of the copy a thread has (it sends this with a read; the answer brings the rest). */
export interface MirrorKnown {
  names: number;
  headers: number;
  segments: number;
}

/** The main thread's side: keeps the copy as the store changes, numbers SKUs and locations. */
export class PositionsMirror {
  /** Location → number. A new map when one is added: the store keys its column memory by the map. */
  private locationIndex = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly skuNumbers = new Map<string, number>();
  /** Float64 each SKU's region holds (main thread only). */
  private capacity = new Int32Array(1024);
  private readonly headers: Int32Array<SharedArrayBuffer>[] = [];
  private readonly data: Float64Array<SharedArrayBuffer>[] = [];
  /** Where the last data segment's free space starts. */
  private fill = 0;

  constructor(store: MemoryStore) {
    store.watch((sku, positions, dueAtMs) => this.write(sku, positions, dueAtMs));
  }

  /** Every location the store has shown, numbered (the numbers the copy and `read` use). */
  get locations(): ReadonlyMap<string, number> {
    return this.locationIndex;
  }

  /** The number of the SKU, -1 if it has no positions (never written). */
  skuNumber(sku: string): number {
    return this.skuNumbers.get(sku) ?? -1;
  }

  /** What a thread that has `known` lacks. */
  update(known: MirrorKnown): MirrorUpdate {
    const update: MirrorUpdate = {};
    if (known.names !== this.names.length) update.names = this.names.slice();
    if (known.headers !== this.headers.length) update.headers = this.headers.map((header) => header.buffer);
    if (known.segments !== this.data.length) update.segments = this.data.map((segment) => segment.buffer);
    return update;
  }

  private locationNumber(location: string): number {
    const known = this.locationIndex.get(location);
    if (known !== undefined) return known;
    const grown = new Map(this.locationIndex);
    grown.set(location, this.names.length);
    this.names.push(location);
    this.locationIndex = grown;
    return this.names.length - 1;
  }

  /** Space for `length` Float64: [segment, offset]. */
  private allocate(length: number): [number, number] {
    let last = this.data.length - 1;
    if (last < 0 || this.fill + length > this.data[last]!.length) {
      this.data.push(new Float64Array(new SharedArrayBuffer(Math.max(dataSegmentLength, length) * Float64Array.BYTES_PER_ELEMENT)));
      this.fill = 0;
      last += 1;
    }
    const offset = this.fill;
    this.fill += length;
    return [last, offset];
  }

  private number(sku: string): number {
    let n = this.skuNumbers.get(sku);
    if (n !== undefined) return n;
    n = this.skuNumbers.size;
    if (n >>> headerShift >= this.headers.length) {
      this.headers.push(new Int32Array(new SharedArrayBuffer(headerSkus * 3 * Int32Array.BYTES_PER_ELEMENT)));
    }
    if (n >= this.capacity.length) {
      const bigger = new Int32Array(this.capacity.length * 2);
      bigger.set(this.capacity);
      this.capacity = bigger;
    }
    this.skuNumbers.set(sku, n);
    return n;
  }

  private write(sku: string, positions: readonly PositionCells[], dueAtMs: number): void {
    const n = this.number(sku);
    const header = this.headers[n >>> headerShift]!;
    const at = (n & (headerSkus - 1)) * 3;
    const length = 2 + 3 * positions.length;
    let segment = header[at + 1]!;
    let offset = header[at + 2]!;
    if (this.capacity[n]! < length) {
      // Room for half as many positions again: a SKU that gains one location may gain more.
      const capacity = 2 + 3 * Math.max(8, positions.length + (positions.length >> 1));
      [segment, offset] = this.allocate(capacity);
      this.capacity[n] = capacity;
    }
    const data = this.data[segment]!;
    Atomics.add(header, at, 1);
    data[offset] = dueAtMs;
    data[offset + 1] = positions.length;
    let o = offset + 2;
    for (const p of positions) {
      data[o] = this.locationNumber(p.location);
      data[o + 1] = p.snap + p.adj;
      data[o + 2] = p.reserved;
      o += 3;
    }
    header[at + 1] = segment;
    header[at + 2] = offset;
    Atomics.add(header, at, 1);
  }
}

/** A gateway thread's side: reads the copy, learns SKU numbers and new segments from the main thread's answers. */
export class MirrorReader {
  private readonly skuNumbers = new Map<string, number>();
  private names: string[] = [];
  private headers: Int32Array[] = [];
  private segments: Float64Array[] = [];
  /** One SKU's positions, read before they are known to be whole. */
  private scratch = new Float64Array(3 * 64);
  /** The sequence number and earliest hold expiry of the write copy() read last. */
  private readonly copied = { sequence: 0, dueAtMs: 0 };
  /**
   * Rows derived per SKU (row()), kept while the SKU's sequence number stays that of the write they
   * came from: ~340 bytes per channel read for each SKU this thread has read.
   */
  private readonly kept = new Map<string, { sequence: number; dueAtMs: number; rows: KeptRows }>();
  /** The main thread's location numbers → the caller's columns, per columns map and names version. */
  private readonly columnsOf = new WeakMap<ReadonlyMap<string, number>, { version: number; byNumber: Int32Array }>();

  get known(): MirrorKnown {
    return { names: this.names.length, headers: this.headers.length, segments: this.segments.length };
  }

  /** What an answer of the main thread brings: what the copy lacked, and the numbers of SKUs it read. */
  learn(update: MirrorUpdate, skus?: readonly string[], numbers?: ArrayLike<number>): void {
    if (update.names) this.names = update.names;
    if (update.headers) this.headers = update.headers.map((buffer) => new Int32Array(buffer));
    if (update.segments) this.segments = update.segments.map((buffer) => new Float64Array(buffer));
    if (skus && numbers) for (let k = 0; k < skus.length; k++) if (numbers[k]! >= 0) this.skuNumbers.set(skus[k]!, numbers[k]!);
  }

  /** The caller's column of each location number. */
  columnsFor(columns: ReadonlyMap<string, number>): Int32Array {
    const known = this.columnsOf.get(columns);
    if (known !== undefined && known.version === this.names.length) return known.byNumber;
    const byNumber = new Int32Array(this.names.length);
    for (let i = 0; i < this.names.length; i++) byNumber[i] = columns.get(this.names[i]!) ?? -1;
    this.columnsOf.set(columns, { version: this.names.length, byNumber });
    return byNumber;
  }

  /**
   * Visits the SKU's positions from the copy and returns true, or returns false having visited
   * nothing: the main thread must answer (see the file's comment).
   */
  read(sku: string, line: number, nowMs: number, byNumber: Int32Array, visit: PositionVisitor): boolean {
    const length = this.copy(sku, nowMs, byNumber);
    if (length < 0) return false;
    const scratch = this.scratch;
    for (let o = 0; o < length; o += 3) visit(line, byNumber[scratch[o]!]!, scratch[o + 1]!, scratch[o + 2]!);
    return true;
  }

  /**
   * The SKU's row of `cells` from the copy, derived once per write of the SKU (its sequence
   * number) and kept (shared: read-only); undefined when it has no position; false when the main
   * thread must answer, as for read.
   */
  row(sku: string, nowMs: number, cells: RowCells, byNumber: Int32Array): Float64Array | undefined | false {
    const n = this.skuNumbers.get(sku);
    const header = n === undefined ? undefined : this.headers[n >>> headerShift];
    if (n === undefined || header === undefined) return false;
    const sequence = Atomics.load(header, (n & (headerSkus - 1)) * 3);
    const kept = this.kept.get(sku);
    if (kept !== undefined && kept.sequence === sequence && kept.dueAtMs > nowMs) {
      const row = kept.rows.find(cells);
      if (row !== undefined) return row;
    }
    const length = this.copy(sku, nowMs, byNumber);
    if (length < 0) return false;
    if (length === 0) return undefined;
    const row = new Float64Array(cells.width);
    const scratch = this.scratch;
    for (let o = 0; o < length; o += 3) {
      const c = byNumber[scratch[o]!]!;
      if (c >= 0) row[c] = cells.cell(c, scratch[o + 1]!, scratch[o + 2]!);
    }
    let rows = kept?.sequence === this.copied.sequence ? kept.rows : undefined;
    if (rows === undefined) {
      rows = new KeptRows();
      this.kept.set(sku, { sequence: this.copied.sequence, dueAtMs: this.copied.dueAtMs, rows });
    }
    return rows.keep(cells, row);
  }

  /**
   * Copies the SKU's positions into `scratch` as one write left them (location number, onHand,
   * reserved each) and returns how many Float64 it copied, with the write's sequence number and
   * earliest hold expiry in `copied`; -1 when the main thread must answer.
   */
  private copy(sku: string, nowMs: number, byNumber: Int32Array): number {
    const n = this.skuNumbers.get(sku);
    if (n === undefined) return -1;
    const header = this.headers[n >>> headerShift];
    if (header === undefined) return -1;
    const at = (n & (headerSkus - 1)) * 3;
    for (let attempt = 0; attempt < readTries; attempt++) {
      const sequence = Atomics.load(header, at);
      if ((sequence & 1) === 1) continue;
      const data = this.segments[header[at + 1]!];
      const offset = header[at + 2]!;
      if (data === undefined) return -1;
      const dueAtMs = data[offset]!;
      const count = data[offset + 1]!;
      const length = 3 * count;
      // A write under way may show any count: judged once the sequence says the read was whole.
      const plausible = Number.isInteger(count) && count >= 0 && offset + 2 + length <= data.length;
      if (plausible) {
        if (this.scratch.length < length) this.scratch = new Float64Array(length * 2);
        this.scratch.set(data.subarray(offset + 2, offset + 2 + length));
      }
      if (Atomics.load(header, at) !== sequence) continue;
      if (!plausible) return -1;
      if (dueAtMs <= nowMs) return -1;
      const scratch = this.scratch;
      for (let o = 0; o < length; o += 3) if (scratch[o]! >= byNumber.length) return -1;
      this.copied.sequence = sequence;
      this.copied.dueAtMs = dueAtMs;
      return length;
    }
    return -1;
  }
}
