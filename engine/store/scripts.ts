// The one module that owns Redis script calls: it loads lua/*.lua (resolving `--!include` lines
// from lua/includes), packs KEYS/ARGV and decodes replies. Nothing else builds KEYS or ARGV.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { projectPath } from '../../config/paths.js';
import { snapshotTie } from '../core/snapshot-order.js';
import { shardOf, type KeyBuilder } from './keys.js';
import { DecodedPositions, rowsOf, type DecodedSku } from './packed-positions.js';
import { TurnBatch } from './turn-batch.js';
import type { LineRule, PositionState, Shortfall, StockEvent } from './types.js';

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

/** Keys per MGET of view stamps: a batch that reaches this is sent at once (bounds one command). */
const stampBatchKeysMax = 1_200;

/** Each caller's stamps out of one MGET's (TurnBatch's split). */
function stampsOf(stamps: (string | null)[], counts: number[]): (string | null)[][] {
  if (counts.length === 1) return [stamps];
  let at = 0;
  return counts.map((count) => stamps.slice(at, (at += count)));
}

export class Scripts {
  private readonly call: Record<ScriptName, Caller>;
  private readonly callBuffer: Record<ScriptName, BufferCaller>;
  /**
   * Standalone only (readDecodedMany): the view stamps asked in one turn, taken with one MGET (a
   * write to Redis per basket cost a sixth of the gateway's thread: CPU profile, the socket write).
   */
  private readonly stamps: TurnBatch<(string | null)[], (string | null)[]>;
  /** Reads' decoding, reused while a SKU's view stamp is the same (packed-positions.ts). */
  private readonly decoded = new DecodedPositions();

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
    this.stamps = new TurnBatch(stampBatchKeysMax, (keys) => (redis as Redis).mget(...keys), stampsOf);
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
    return rowsOf(sku, await this.readDecoded(sku, nowMs));
  }

  /** Standalone only (keys of several hash slots): positions of each SKU, in order. */
  async readPositionsMany(skus: string[], nowMs: number): Promise<PositionState[][]> {
    const decoded = await this.readDecodedMany(skus, nowMs);
    return decoded.map((d, k) => rowsOf(skus[k]!, d));
  }

  /**
   * One SKU's positions: the decoding kept from its read view (lua/includes/expire.lua) while the
   * view's stamp (one GET) still names it, else the script, which releases the SKU's due holds and
   * hands back its view (made anew when a write deleted it). The kept decoding is passed over when
   * a hold in it may be due: the script releases it first.
   */
  async readDecoded(sku: string, nowMs: number): Promise<DecodedSku> {
    const kept = this.decoded.current(sku, await this.redis.get(this.keys.viewStamp(sku)), nowMs);
    if (kept !== undefined) return kept;
    return this.decoded.of(sku, (await this.callBuffer.readPositions(2, ...this.keys.skuKeyList(sku), nowMs)) as Buffer, () => this.keys.sku(sku).positions);
  }

  /** readDecoded for several SKUs (standalone only: their keys sit in different hash slots): one MGET of stamps, then one script call for the SKUs it did not settle. */
  async readDecodedMany(skus: string[], nowMs: number): Promise<DecodedSku[]> {
    const stamps = await this.stamps.get(skus.map((sku) => this.keys.viewStamp(sku)));
    const decoded: DecodedSku[] = new Array(skus.length);
    const again: number[] = [];
    for (let k = 0; k < stamps.length; k++) {
      const kept = this.decoded.current(skus[k]!, stamps[k] ?? null, nowMs);
      if (kept === undefined) again.push(k);
      else decoded[k] = kept;
    }
    if (again.length === 0) return decoded;
    const reply = (await this.callBuffer.readPositionsMany(0, this.keys.prefix, nowMs, `${again.map((k) => skus[k]).join('\n')}\n`)) as Buffer[];
    if (reply.length !== again.length) throw new Error(`readPositionsMany: ${reply.length} SKUs read of ${again.length} asked`);
    again.forEach((k, i) => (decoded[k] = this.decoded.of(skus[k]!, reply[i]!, () => this.keys.sku(skus[k]!).positions)));
    return decoded;
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
