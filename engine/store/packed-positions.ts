// How readers decode a SKU's positions as Redis packs them (lua/includes/expire.lua: readAllPacked),
// and the decoded positions the Redis store keeps per SKU. A read asks Redis every time (reads are
// live), but for the SKU's stamp only: the token of its read view, which a write of any of its
// positions deletes. While the stamp names the view decoded last, the decoding is reused.
// - Decoding ~500 positions per 12-line basket, finding each location's column in the caller's
//   map and scanning for due holds took over a quarter of the gateway's thread on Redis (CPU
//   profile: decoding, the visitor's Map lookup, the byte scan for due holds).
// - Taking the view itself every time (~25 KB a basket) then cost the gateway 15-19 us of user
//   and 8.5 us of system CPU per basket, a quarter of a request, and Redis the writing of it.

import { KeptRows } from './kept-rows.js';
import type { PositionState, RowCells } from './types.js';

/** One position of a packed read; `line` is passed through, `due` is in seconds (0: no hold). */
export type PackedVisitor = (line: number, location: string, onHand: number, reserved: number, version: number, due: number) => void;

/**
 * The position layout of lua/includes/position.lua: format byte, then snapQty (6 bytes,
 * little-endian), adjSum (5), reserved (6), due (4, unsigned, seconds, at 18), snapAsOf (6),
 * snapTie (4), adjCount (1), version (5, at 33).
 */
const positionSize = 38;
const dueAt = 18;
const positionVersion = 3;
const separator = 0x7c; // '|'

function positionFormatError(posKey: string, location: string): Error {
  return new Error(`position ${posKey} ${location} was not written by this version of Instock (format byte is not ${positionVersion}): reload its stock into an empty Redis`);
}

/** How many location ids LocationNames keeps (a network has hundreds or thousands). */
const locationNamesMax = 100_000;

/**
 * Location ids as read back from Redis, each made into a string once and then found again by a
 * hash of its bytes: a 12-line basket decodes ~500 positions, and making each id anew (a Buffer
 * toString per position) took an eighth of the gateway's main thread on Redis (CPU profile).
 * Location ids are ASCII (engine/core/validate.ts), so a byte is its char code.
 */
export class LocationNames {
  private readonly byHash = new Map<number, string>();

  name(bytes: Buffer, start: number, end: number): string {
    let hash = 0x811c9dc5 ^ (end - start);
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
    const known = this.byHash.get(hash);
    if (known !== undefined && known.length === end - start) {
      let same = true;
      for (let k = 0; k < known.length && same; k++) same = known.charCodeAt(k) === bytes[start + k];
      if (same) return known;
    }
    const made = bytes.toString('latin1', start, end);
    // A new id, or another with the same hash: the newest takes the slot (both stay correct).
    if (this.byHash.size >= locationNamesMax) this.byHash.clear();
    this.byHash.set(hash, made);
    return made;
  }
}

const sharedNames = new LocationNames();

/**
 * Decodes a SKU's positions as readAllPacked (lua/includes/expire.lua) packs them: its hash's
 * fields and values joined with '|', each value positionSize bytes whatever they hold. A value of
 * another size or format byte fails with the error the scripts give (posKey names the hash in it).
 * Each position goes to `visit`, with `line` passed through.
 */
export function visitPackedPositions(line: number, posKey: () => string, packed: Buffer, visit: PackedVisitor, names: LocationNames = sharedNames): void {
  let at = 0;
  while (at < packed.length) {
    // A byte loop, not indexOf: ids are a few bytes, and the native call cost more than the scan.
    let bar = at;
    while (bar < packed.length && packed[bar] !== separator) bar += 1;
    const found = bar < packed.length;
    const location = found ? names.name(packed, at, bar) : packed.toString('latin1', at, Math.min(packed.length, at + 64));
    const v = bar + 1;
    const end = v + positionSize;
    if (!found || end > packed.length || packed[v] !== positionVersion || (end < packed.length && packed[end] !== separator)) throw positionFormatError(posKey(), location);
    visit(line, location, int48(packed, v + 1) + int40(packed, v + 7), int48(packed, v + 12), int40(packed, v + 33), packed.readUInt32LE(v + dueAt));
    at = end + 1;
  }
}

// Little-endian signed integers of 6 and 5 bytes, as Buffer.readIntLE(at, 6 | 5) reads them, five
// times faster: a basket decodes ~2,000 of them (readIntLE was a sixth of the gateway's thread on Redis).
function int48(b: Buffer, at: number): number {
  const low = b[at]! + b[at + 1]! * 0x100 + b[at + 2]! * 0x1_0000 + b[at + 3]! * 0x100_0000;
  const high = b[at + 4]! + b[at + 5]! * 0x100;
  return (high >= 0x8000 ? high - 0x1_0000 : high) * 0x1_0000_0000 + low;
}

function int40(b: Buffer, at: number): number {
  const low = b[at]! + b[at + 1]! * 0x100 + b[at + 2]! * 0x1_0000 + b[at + 3]! * 0x100_0000;
  const high = b[at + 4]!;
  return (high >= 0x80 ? high - 0x100 : high) * 0x1_0000_0000 + low;
}

/** SKUs kept decoded; past this the SKU decoded longest ago goes (~2 KB each with 40 locations). */
export const decodedSkusMax = 10_000;

/** The bytes of a view's token (lua/includes/expire.lua: VIEW_TOKEN_SIZE), before its positions. */
export const viewTokenSize = 20;

/** One SKU's positions decoded from `packed`, and the token of the view they came from ('' when none). */
export class DecodedSku {
  readonly locations: string[] = [];
  readonly onHand: number[] = [];
  readonly reserved: number[] = [];
  readonly versions: number[] = [];
  /** The earliest `due` of its positions, in seconds (0: none). */
  private dueMin = 0;
  private columnsSeen: ReadonlyMap<string, number> | undefined;
  private columnOf = new Int32Array(0);
  /** Rows derived from these positions (row()). */
  private readonly rows = new KeptRows();

  constructor(
    packed: Buffer,
    posKey: () => string,
    names: LocationNames = sharedNames,
    readonly token = '',
  ) {
    visitPackedPositions(0, posKey, packed, (_, location, onHand, reserved, version, due) => {
      this.locations.push(location);
      this.onHand.push(onHand);
      this.reserved.push(reserved);
      this.versions.push(version);
      if (due > 0 && (this.dueMin === 0 || due < this.dueMin)) this.dueMin = due;
    }, names);
  }

  /**
   * Whether a held line of the SKU may have expired by nowMs: some position's `due` has come
   * (lua/includes/position.lua). A view where one may is not used: the SKU is read through the
   * script, which releases those lines first.
   */
  holdMayBeDue(nowMs: number): boolean {
    return this.dueMin > 0 && this.dueMin * 1000 <= nowMs;
  }

  /** Each position's column in `columns` (-1: absent), remembered for the last map asked. */
  columns(columns: ReadonlyMap<string, number>): Int32Array {
    if (this.columnsSeen !== columns) {
      this.columnOf = Int32Array.from(this.locations, (location) => columns.get(location) ?? -1);
      this.columnsSeen = columns;
    }
    return this.columnOf;
  }

  /**
   * The row `cells` derives from these positions, made once and kept with them (they never
   * change: a changed SKU is decoded anew); undefined when the SKU has no position.
   */
  row(cells: RowCells): Float64Array | undefined {
    if (this.locations.length === 0) return undefined;
    const kept = this.rows.find(cells);
    if (kept) return kept;
    const columnOf = this.columns(cells.columns);
    const row = new Float64Array(cells.width);
    for (let i = 0; i < columnOf.length; i++) {
      const c = columnOf[i]!;
      if (c >= 0) row[c] = cells.cell(c, this.onHand[i]!, this.reserved[i]!);
    }
    return this.rows.keep(cells, row);
  }
}

/**
 * The positions of SKUs read lately, each decoded once per view (lua/includes/expire.lua): a
 * reader asks Redis for the SKU's stamp and reuses the decoding while it names the same view.
 */
export class DecodedPositions {
  private readonly bySku = new Map<string, DecodedSku>();

  constructor(private readonly max = decodedSkusMax) {}

  get size(): number {
    return this.bySku.size;
  }

  /**
   * The SKU's positions decoded from the view that `stamp` (read from Redis) names, when they are
   * kept and no hold among them may be due by nowMs (the script must release it first); else undefined.
   */
  current(sku: string, stamp: string | null, nowMs: number): DecodedSku | undefined {
    if (stamp === null) return undefined;
    const known = this.bySku.get(sku);
    return known !== undefined && known.token === stamp && !known.holdMayBeDue(nowMs) ? known : undefined;
  }

  /** The SKU's positions as `view` (a token, then the positions packed; or empty) holds them; posKey names where they come from in a format error. */
  of(sku: string, view: Buffer, posKey: () => string): DecodedSku {
    if (view.length === 0) return new DecodedSku(view, posKey);
    if (view.length < viewTokenSize) throw new Error(`read view of ${posKey()} is ${view.length} bytes, shorter than its token: was it written by this version of Instock?`);
    const token = view.toString('latin1', 0, viewTokenSize);
    const known = this.bySku.get(sku);
    if (known !== undefined && known.token === token) return known;
    const decoded = new DecodedSku(view.subarray(viewTokenSize), posKey, sharedNames, token);
    if (known === undefined && this.bySku.size >= this.max) this.bySku.delete(this.bySku.keys().next().value!);
    this.bySku.set(sku, decoded);
    return decoded;
  }
}

/** One PositionState per position, in the packed (hash) order. */
export function rowsOf(sku: string, decoded: DecodedSku): PositionState[] {
  return decoded.locations.map((location, i) => ({ sku, location, onHand: decoded.onHand[i]!, reserved: decoded.reserved[i]!, version: decoded.versions[i]! }));
}
