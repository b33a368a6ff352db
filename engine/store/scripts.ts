// The one module that owns Redis script calls: it loads lua/*.lua (resolving `--!include` lines
// from lua/includes), packs KEYS/ARGV and decodes replies. Nothing else builds KEYS or ARGV.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { projectPath } from '../../config/paths.js';
import { snapshotTie } from '../core/snapshot-order.js';
import { shardOf, type KeyBuilder } from './keys.js';
import type { LineRule, PositionState, Shortfall, StockEvent } from './types.js';

/** A position decoded from a packed read; `line` is its SKU's index in the SKUs asked. */
export type LocationVisitor = (line: number, location: string, onHand: number, reserved: number) => void;

const luaDir = projectPath('engine', 'store', 'lua');

export function loadScript(name: string): string {
  const source = readFileSync(join(luaDir, `${name}.lua`), 'utf8');
  return source.replace(/^--!include (\S+)$/gm, (_, file: string) => readFileSync(join(luaDir, 'includes', file), 'utf8'));
}

const scriptNames = ['applyEvents', 'readPositions', 'readPositionsMany', 'holdLines', 'holdBaskets', 'transitionLines', 'beginReservation', 'beginTransition', 'finishReservation'] as const;
type ScriptName = (typeof scriptNames)[number];

type Reply = (string | number)[];
type Caller = (numKeys: number, ...args: (string | number)[]) => Promise<Reply>;
/** The same script with its reply as Buffers (ioredis defines `<name>Buffer` beside each command). */
type BufferCaller = (numKeys: number, ...args: (string | number)[]) => Promise<Buffer | Buffer[]>;

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
export function visitPackedPositions(line: number, posKey: () => string, packed: Buffer, visit: (line: number, location: string, onHand: number, reserved: number, version: number) => void, names: LocationNames = sharedNames): void {
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
    visit(line, location, int48(packed, v + 1) + int40(packed, v + 7), int48(packed, v + 12), int40(packed, v + 33));
    at = end + 1;
  }
}

/**
 * Whether a held line of the SKU may have expired by nowMs: some position's `due` has come
 * (lua/includes/position.lua). A view where one may
 * is not used: the SKU is read through the script, which releases those lines first. A string
 * that does not parse also answers true, so that the script reports it.
 */
export function holdMayBeDue(packed: Buffer, nowMs: number): boolean {
  let at = 0;
  while (at < packed.length) {
    let bar = at;
    while (bar < packed.length && packed[bar] !== separator) bar += 1;
    const v = bar + 1;
    if (v + positionSize > packed.length) return true;
    const due = packed.readUInt32LE(v + dueAt);
    if (due > 0 && due * 1000 <= nowMs) return true;
    at = v + positionSize + 1;
  }
  return false;
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

/** visitPackedPositions into one PositionState per position, in the hash's order. */
export function decodePackedPositions(sku: string, posKey: () => string, packed: Buffer, names: LocationNames = sharedNames): PositionState[] {
  const rows: PositionState[] = [];
  visitPackedPositions(0, posKey, packed, (_, location, onHand, reserved, version) => rows.push({ sku, location, onHand, reserved, version }), names);
  return rows;
}

export interface LineCall {
  location: string;
  qty: number;
  rule: LineRule;
}

export interface BasketCall {
  id: string;
  channel: string;
  linesJson: string;
  skus: string[];
  lines: LineCall[][];
  nowMs: number;
  expiresAtMs: number;
}

export class Scripts {
  private readonly call: Record<ScriptName, Caller>;
  private readonly callBuffer: Record<ScriptName, BufferCaller>;

  constructor(
    private readonly redis: Redis | Cluster,
    readonly keys: KeyBuilder,
  ) {
    for (const name of scriptNames) {
      // defineCommand: EVALSHA with a fallback to EVAL when the server lost its script cache.
      if (!(name in redis)) redis.defineCommand(`instock_${name}`, { lua: loadScript(name) });
    }
    const bound = redis as unknown as Record<string, Caller>;
    this.call = Object.fromEntries(scriptNames.map((n) => [n, bound[`instock_${n}`]!.bind(redis)])) as Record<ScriptName, Caller>;
    const boundBuffer = redis as unknown as Record<string, BufferCaller>;
    this.callBuffer = Object.fromEntries(scriptNames.map((n) => [n, boundBuffer[`instock_${n}Buffer`]!.bind(redis)])) as Record<ScriptName, BufferCaller>;
  }

  private skuKeys(skus: string[]): string[] {
    return skus.flatMap((sku) => this.keys.skuKeyList(sku));
  }

  /**
   * Applies events in order; returns 4 numbers per event: outcome (1 applied, 2 duplicate,
   * 3 stale), onHand, reserved, the position's version. In a Cluster every event must be on routeSku.
   */
  async applyEvents(events: StockEvent[], nowMs: number, routeSku?: string): Promise<number[]> {
    let lines = '';
    for (const e of events) {
      const snapshot = e.type === 'snapshot';
      lines += `${e.sku}|${snapshot ? 's' : 'd'}|${e.qty}|${e.asOf}|${snapshot ? snapshotTie(e.eventId) : 0}|${e.location}|${e.eventId}\n`;
    }
    const reply = routeSku === undefined ? await this.call.applyEvents(0, this.keys.prefix, nowMs, events.length, lines) : await this.call.applyEvents(1, this.keys.sku(routeSku).positions, this.keys.prefix, nowMs, events.length, lines);
    return reply as number[];
  }

  /** The SKU's positions, in the hash's order. */
  async readPositions(sku: string, nowMs: number): Promise<PositionState[]> {
    const { posKey, packed } = await this.readPacked(sku, nowMs);
    return decodePackedPositions(sku, posKey, packed);
  }

  /** Standalone only (keys of several hash slots): positions of each SKU, in order. */
  async readPositionsMany(skus: string[], nowMs: number): Promise<PositionState[][]> {
    const reply = await this.readPackedMany(skus, nowMs);
    return reply.map((packed, k) => decodePackedPositions(skus[k]!, () => this.keys.sku(skus[k]!).positions, packed));
  }

  /** readPositionsMany, each position handed to `visit` (line = the SKU's index). */
  async visitPositionsMany(skus: string[], nowMs: number, visit: LocationVisitor): Promise<void> {
    const reply = await this.readPackedMany(skus, nowMs);
    for (let k = 0; k < reply.length; k++) visitPackedPositions(k, () => this.keys.sku(skus[k]!).positions, reply[k]!, visit);
  }

  /** One SKU's positions (one key pair, so a Cluster routes it), each handed to `visit` as `line`. */
  async visitPositions(line: number, sku: string, nowMs: number, visit: LocationVisitor): Promise<void> {
    const { posKey, packed } = await this.readPacked(sku, nowMs);
    visitPackedPositions(line, posKey, packed, visit);
  }

  /**
   * One SKU's positions packed: its read view (lua/includes/expire.lua) with a GET, else the
   * script, which releases the SKU's due holds, packs its positions and makes the view. The view is
   * passed over when it is missing (none yet, or a position was written since) or a hold in it may
   * be due.
   */
  private async readPacked(sku: string, nowMs: number): Promise<{ posKey: () => string; packed: Buffer }> {
    const posKey = () => this.keys.sku(sku).positions;
    const view = await this.redis.getBuffer(this.keys.view(sku));
    if (view !== null && !holdMayBeDue(view, nowMs)) return { posKey, packed: view };
    return { posKey, packed: (await this.callBuffer.readPositions(2, ...this.keys.skuKeyList(sku), nowMs)) as Buffer };
  }

  /** readPacked for several SKUs (standalone only: their keys sit in different hash slots): one MGET, then one script call for the SKUs it did not settle. */
  private async readPackedMany(skus: string[], nowMs: number): Promise<Buffer[]> {
    const views = (await (this.redis as Redis).mgetBuffer(...skus.map((sku) => this.keys.view(sku)))) as (Buffer | null)[];
    const again: number[] = [];
    for (let k = 0; k < views.length; k++) if (views[k] === null || holdMayBeDue(views[k]!, nowMs)) again.push(k);
    if (again.length === 0) return views as Buffer[];
    const reply = (await this.callBuffer.readPositionsMany(0, this.keys.prefix, nowMs, `${again.map((k) => skus[k]).join('\n')}\n`)) as Buffer[];
    if (reply.length !== again.length) throw new Error(`readPositionsMany: ${reply.length} SKUs read of ${again.length} asked`);
    again.forEach((k, i) => (views[k] = reply[i]!));
    return views as Buffer[];
  }

  /** Returns the shortfalls; empty means every line is held. */
  async holdLines(reservationId: string, skus: string[], lines: LineCall[][], nowMs: number, expiresAtMs: number): Promise<{ sku: string; location: string; requested: number; available: number }[]> {
    const reply = await this.call.holdLines(skus.length * 2, ...this.skuKeys(skus), reservationId, nowMs, expiresAtMs, ...this.lineArgs(lines));
    if (Number(reply[0]) === 1) return [];
    const shortfalls = [];
    for (let i = 1; i < reply.length; i += 4) {
      shortfalls.push({ sku: skus[Number(reply[i])]!, location: String(reply[i + 1]), requested: Number(reply[i + 2]), available: Number(reply[i + 3]) });
    }
    return shortfalls;
  }

  /** One argument per line (lua/includes/hold.lua): the group index, then lineSpec. */
  private lineArgs(lines: LineCall[][]): string[] {
    const args: string[] = [];
    lines.forEach((group, g) => {
      for (const line of group) args.push(`${g}|${this.lineSpec(line)}`);
    });
    return args;
  }

  /** A line after its group name, as lua/includes/hold.lua reads it. */
  private lineSpec({ location, qty, rule }: LineCall): string {
    return `${location}|${qty}|${rule.sellable ? 1 : 0}|${rule.bufferUnits}|${rule.bufferPercent}|${rule.minThreshold}|${rule.capUnits ?? -1}`;
  }

  /** Standalone only: several whole holds, headers included, in one script (group commit). */
  async holdBaskets(baskets: BasketCall[], retentionMs: number): Promise<{ verdict: 'held' | 'rejected' | 'exists'; shortfalls: Shortfall[] }[]> {
    // One argument for the whole batch; the script builds the keys (lua/holdBaskets.lua).
    let text = '';
    for (const b of baskets) {
      let count = 0;
      let lines = '';
      b.lines.forEach((group, g) => {
        for (const line of group) {
          lines += `${b.skus[g]!}|${this.lineSpec(line)}\n`;
          count += 1;
        }
      });
      text += `${b.id}|${b.channel}|${b.nowMs}|${b.expiresAtMs}|${shardOf(b.id)}|${count}|${b.linesJson}\n${lines}`;
    }
    const reply = await this.call.holdBaskets(0, this.keys.prefix, retentionMs, text);
    const verdicts = ['held', 'rejected', 'exists'] as const;
    let i = 0;
    return baskets.map(() => {
      const verdict = verdicts[Number(reply[i]) - 1]!;
      const count = Number(reply[i + 1]);
      i += 2;
      const shortfalls: Shortfall[] = [];
      for (let s = 0; s < count; s++, i += 4) {
        shortfalls.push({ sku: String(reply[i]), location: String(reply[i + 1]), requested: Number(reply[i + 2]), available: Number(reply[i + 3]) });
      }
      return { verdict, shortfalls };
    });
  }

  /** lines[g]: the reservation's lines on skus[g], with the quantities its header holds. */
  async transitionLines(reservationId: string, op: 'confirm' | 'fulfil' | 'release', skus: string[], lines: { location: string; qty: number }[][], nowMs: number): Promise<{ done: number; missing: number }> {
    const keys = this.skuKeys(skus);
    const args: (string | number)[] = [reservationId, op, nowMs, skus.length];
    lines.forEach((group, g) =>
      group.forEach(({ location, qty }) => {
        keys.push(this.keys.adjustments(skus[g]!, location));
        args.push(g, location, qty);
      }),
    );
    const reply = await this.call.transitionLines(keys.length, ...keys, ...args);
    return { done: Number(reply[0]), missing: Number(reply[1]) };
  }

  async beginReservation(id: string, channel: string, linesJson: string, nowMs: number, expiresAtMs: number, leaseMs: number): Promise<'new' | 'continue' | 'busy' | 'exists'> {
    const reply = await this.call.beginReservation(2, this.keys.reservation(id), this.keys.due(id), id, channel, linesJson, nowMs, expiresAtMs, leaseMs);
    return String(reply[0]) as 'new' | 'continue' | 'busy' | 'exists';
  }

  async beginTransition(id: string, op: 'confirm' | 'fulfil' | 'release' | 'expire', nowMs: number, leaseMs: number): Promise<{ verdict: 'go' | 'done' | 'unknown' | 'busy' | 'invalid'; state?: string }> {
    const reply = await this.call.beginTransition(1, this.keys.reservation(id), op, nowMs, leaseMs);
    return { verdict: String(reply[0]) as 'go', state: reply[1] === undefined ? undefined : String(reply[1]) };
  }

  async finishReservation(id: string, state: string, shortfallsJson: string, expired: boolean, retentionMs: number): Promise<void> {
    await this.call.finishReservation(2, this.keys.reservation(id), this.keys.due(id), id, state, shortfallsJson, expired ? '1' : '0', retentionMs);
  }
}
