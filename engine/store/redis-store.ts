// The Redis store, standalone or Cluster. On a standalone server a basket is held by one script
// over all its SKUs (atomic). In a Cluster each SKU lives in its own slot, so a basket is held SKU by
// SKU and is all-or-nothing by compensation: lines taken are given back when another SKU is short.
// A caller that dies between steps leaves only lines with an expiry: they are released when due,
// by the next script that touches the SKU or by the sweeper, even if no process ran at that time.

import { Cluster } from 'ioredis';
import { InventoryError, invariant } from './errors.js';
import { KeyBuilder, reservationShards } from './keys.js';
import { connectRedis, type RedisConnection, type RedisTarget } from './redis-connection.js';
import { Scripts, type BasketCall, type LineCall } from './scripts.js';
import type { DecodedSku } from './packed-positions.js';
import type { ApplyOutcome, ApplyResult, HeldReservation, HoldRequest, InventoryStore, LocationStatus, PositionState, PositionVisitor, Reservation, RowCells, ReservationLine, ReservationState, Shortfall, StockEvent, Transition } from './types.js';
import { assertValidEvent, checkHold, checkId, groupBySku } from './validate.js';

/** A pending hold or transition belongs to its caller this long; then a retry may finish it. */
const leaseMs = 5_000;
/** Finished reservations are kept this long so that retries get their first outcome. */
const retentionMs = 7 * 86_400_000;
/** Events per script call on a standalone server: bounds the time one script blocks Redis. */
const applyBatchMax = 1_000;
/**
 * Group commit: at most this many holds, and this many lines, per script call (bounds how long one
 * script blocks Redis). 32 single-line holds per call measured 46-56 % of the EVALSHA floor, 16 per
 * call 46 % (`npm run bench -- store`); 64 leaves one call in flight at a time and was slower.
 */
const holdBatchMax = 32;
const holdBatchLinesMax = 96;
const notSellable = { sellable: false, bufferUnits: 0, bufferPercent: 0, minThreshold: 0 };
const expireBatchMax = 500;
const outcomes: ApplyOutcome[] = ['applied', 'duplicate', 'stale'];
const byLocation = (a: PositionState, b: PositionState): number => (a.location < b.location ? -1 : a.location > b.location ? 1 : 0);
/** Sorted by location. A hash keeps insertion order, most often sorted already: checked first, in one pass. */
function sortedByLocation(rows: PositionState[]): PositionState[] {
  for (let i = 1; i < rows.length; i++) if (rows[i - 1]!.location > rows[i]!.location) return rows.sort(byLocation);
  return rows;
}

interface Header {
  state: string;
  channel: string;
  lines: string;
  created: string;
  exp: string;
  short?: string;
  expired?: string;
}

export interface RedisStoreOptions {
  keyPrefix?: string;
  name?: string;
}

export class RedisStore implements InventoryStore {
  readonly kind: 'redis' | 'redis-cluster';
  private readonly scripts: Scripts;
  private readonly keys: KeyBuilder;
  readonly keyPrefix: string;
  private pendingHolds: { call: BasketCall; lines: ReservationLine[]; resolve: (r: Reservation) => void; reject: (e: unknown) => void }[] = [];
  private pendingHoldLines = 0;
  private holdFlushScheduled = false;

  constructor(
    readonly redis: RedisConnection,
    options: RedisStoreOptions = {},
  ) {
    this.kind = redis instanceof Cluster ? 'redis-cluster' : 'redis';
    this.keys = new KeyBuilder(options.keyPrefix);
    this.keyPrefix = this.keys.prefix;
    this.scripts = new Scripts(redis, this.keys);
  }

  static connect(target: RedisTarget, options: RedisStoreOptions = {}): RedisStore {
    return new RedisStore(connectRedis(target, options.name ?? 'instock-store'), options);
  }

  private get clustered(): boolean {
    return this.kind === 'redis-cluster';
  }

  async applyEvents(events: StockEvent[], nowMs = Date.now()): Promise<ApplyResult[]> {
    events.forEach(assertValidEvent);
    const results: ApplyResult[] = new Array(events.length);
    const run = async (indices: number[] | undefined, start: number, chunk: StockEvent[], routeSku?: string) => {
      const reply = await this.scripts.applyEvents(chunk, nowMs, routeSku);
      for (let k = 0; k < chunk.length; k++) {
        const event = chunk[k]!;
        results[indices ? indices[k]! : start + k] = { outcome: outcomes[reply[4 * k]! - 1]!, position: { sku: event.sku, location: event.location, onHand: reply[4 * k + 1]!, reserved: reply[4 * k + 2]!, version: reply[4 * k + 3]! } };
      }
    };
    if (this.clustered) {
      // One script per SKU, all issued at once (ioredis pipelines them per node).
      const { skus, groups } = groupBySku(events.map((event, i) => ({ event, i, sku: event.sku })));
      await Promise.all(skus.map((sku, g) => run(groups[g]!.map((x) => x.i), 0, groups[g]!.map((x) => x.event), sku)));
    } else {
      // One script per chunk of events, over all their SKUs, in order.
      const calls: Promise<void>[] = [];
      for (let start = 0; start < events.length; start += applyBatchMax) calls.push(run(undefined, start, events.slice(start, start + applyBatchMax)));
      await Promise.all(calls);
    }
    return results;
  }

  async positions(sku: string, nowMs: number): Promise<PositionState[]> {
    checkId('sku', sku);
    return sortedByLocation(await this.scripts.readPositions(sku, nowMs));
  }

  async positionsMany(skus: string[], nowMs: number): Promise<PositionState[][]> {
    for (const sku of skus) checkId('sku', sku);
    // A cluster spreads SKUs over slots: one call per SKU, all in flight at once.
    if (this.clustered || skus.length === 1) return Promise.all(skus.map((sku) => this.positions(sku, nowMs)));
    return (await this.scripts.readPositionsMany(skus, nowMs)).map(sortedByLocation);
  }

  /** The SKUs' positions as decoded from their read views (scripts.ts: readDecoded), read live. */
  private decodedMany(skus: string[], nowMs: number): Promise<DecodedSku[]> {
    for (const sku of skus) checkId('sku', sku);
    return this.clustered || skus.length === 1 ? Promise.all(skus.map((sku) => this.scripts.readDecoded(sku, nowMs))) : this.scripts.readDecodedMany(skus, nowMs);
  }

  async forEachPosition(skus: string[], nowMs: number, columns: ReadonlyMap<string, number>, visit: PositionVisitor): Promise<void> {
    const decoded = await this.decodedMany(skus, nowMs);
    for (let line = 0; line < skus.length; line++) {
      const { onHand, reserved } = decoded[line]!;
      const column = decoded[line]!.columns(columns);
      for (let i = 0; i < column.length; i++) visit(line, column[i]!, onHand[i]!, reserved[i]!);
    }
  }

  /** Each SKU's row is kept with its decoded read view: derived again only when the SKU changed. */
  async readRows(skus: string[], nowMs: number, cells: RowCells): Promise<(Float64Array | undefined)[]> {
    return (await this.decodedMany(skus, nowMs)).map((decoded) => decoded.row(cells));
  }

  async hold(request: HoldRequest): Promise<Reservation> {
    const lines = checkHold(request);
    const rules = new Map(request.lines.map((l) => [`${l.sku}\u0000${l.location}`, l.rule]));
    const callsFor = (planned: ReservationLine[]) => {
      const { skus, groups } = groupBySku(planned);
      const calls: LineCall[][] = groups.map((group) => group.map((l) => ({ location: l.location, qty: l.qty, rule: rules.get(`${l.sku}\u0000${l.location}`) ?? notSellable })));
      return { skus, groups, calls };
    };
    const id = request.reservationId;
    const expiresAtMs = request.nowMs + request.holdTtlMs;
    const linesJson = JSON.stringify(lines);
    if (!this.clustered) {
      const { skus, calls } = callsFor(lines);
      return this.enqueueHold({ id, channel: request.channel, linesJson, skus, lines: calls, nowMs: request.nowMs, expiresAtMs }, lines);
    }
    const begin = await this.scripts.beginReservation(id, request.channel, linesJson, request.nowMs, expiresAtMs, leaseMs);
    if (begin === 'busy') throw new InventoryError('invalid_transition', `reservation ${id} is being processed by another request: retry in a few seconds`);
    if (begin === 'exists') return (await this.reservation(id, request.nowMs))!;
    // 'continue' (a retry after its first caller died) re-runs the same steps: lines already held
    // by this reservation are not taken twice.
    const stored = begin === 'continue' ? await this.header(id) : undefined;
    const planned: ReservationLine[] = stored ? (JSON.parse(stored.lines) as ReservationLine[]) : lines;
    const plannedExpiry = stored ? Number(stored.exp) : expiresAtMs;
    const { skus, groups, calls } = callsFor(planned);
    const perSku = await Promise.all(skus.map((sku, g) => this.scripts.holdLines(id, [sku], [calls[g]!], request.nowMs, plannedExpiry)));
    const shortfalls = perSku.flat();
    if (shortfalls.length > 0) {
      // Compensation: give back what the SKUs that did fit have taken.
      const taken = skus.map((sku, g) => ({ sku, g })).filter(({ g }) => perSku[g]!.length === 0);
      await Promise.all(taken.map(({ sku, g }) => this.scripts.transitionLines(id, 'release', [sku], [groups[g]!], request.nowMs)));
    }
    await this.scripts.finishReservation(id, shortfalls.length > 0 ? 'rejected' : 'held', shortfalls.length > 0 ? JSON.stringify(shortfalls) : '', false, retentionMs);
    return (await this.reservation(id, request.nowMs))!;
  }

  /**
   * Standalone: holds issued in the same event-loop turn go to Redis together, in one script call
   * (group commit, up to holdBatchMax holds and holdBatchLinesMax lines). Each stays atomic and
   * all-or-nothing on its own.
   */
  private enqueueHold(call: BasketCall, lines: ReservationLine[]): Promise<Reservation> {
    return new Promise((resolve, reject) => {
      this.pendingHolds.push({ call, lines, resolve, reject });
      this.pendingHoldLines += lines.length;
      if (this.pendingHolds.length >= holdBatchMax || this.pendingHoldLines >= holdBatchLinesMax) this.flushHolds();
      else if (!this.holdFlushScheduled) {
        this.holdFlushScheduled = true;
        setImmediate(() => this.flushHolds());
      }
    });
  }

  private flushHolds(): void {
    this.holdFlushScheduled = false;
    this.pendingHoldLines = 0;
    while (this.pendingHolds.length > 0) {
      let size = 0;
      for (let lines = 0; size < this.pendingHolds.length && size < holdBatchMax && lines < holdBatchLinesMax; size++) lines += this.pendingHolds[size]!.lines.length;
      const batch = this.pendingHolds.splice(0, size);
      this.scripts.holdBaskets(batch.map((b) => b.call), retentionMs).then(
        (results) => {
          results.forEach((result, i) => {
            const { call, lines, resolve, reject } = batch[i]!;
            if (result.verdict === 'exists') {
              this.reservation(call.id, call.nowMs).then((r) => resolve(r!), reject);
              return;
            }
            const reservation: Reservation = { id: call.id, channel: call.channel, state: result.verdict, lines, createdAtMs: call.nowMs, expiresAtMs: result.verdict === 'held' ? call.expiresAtMs : 0 };
            if (result.verdict === 'rejected') reservation.shortfalls = result.shortfalls;
            resolve(reservation);
          });
        },
        (error: unknown) => batch.forEach((b) => b.reject(error)),
      );
    }
  }

  async transition(reservationId: string, transition: Transition, nowMs: number): Promise<Reservation> {
    checkId('reservation id', reservationId);
    const outcome = await this.runTransition(reservationId, transition, nowMs);
    if (outcome === 'unknown') throw new InventoryError('unknown_reservation', `reservation ${reservationId} does not exist (or expired more than 7 days ago)`);
    return (await this.reservation(reservationId, nowMs))!;
  }

  private async runTransition(id: string, op: Transition | 'expire', nowMs: number): Promise<'ok' | 'unknown'> {
    const begin = await this.scripts.beginTransition(id, op, nowMs, leaseMs);
    if (begin.verdict === 'unknown') return 'unknown';
    if (begin.verdict === 'done') return 'ok';
    if (begin.verdict === 'busy') throw new InventoryError('invalid_transition', `reservation ${id} is ${begin.state}: retry in a few seconds`);
    if (begin.verdict === 'invalid') throw new InventoryError('invalid_transition', `cannot ${op} reservation ${id}: it is ${begin.state}`);
    const header = (await this.header(id))!;
    const lines = JSON.parse(header.lines) as ReservationLine[];
    const { skus, groups } = groupBySku(lines);
    const lineOp = op === 'expire' ? 'release' : op;
    let missing = 0;
    if (this.clustered) {
      const replies = await Promise.all(skus.map((sku, g) => this.scripts.transitionLines(id, lineOp, [sku], [groups[g]!], nowMs)));
      missing = replies.reduce((n, r) => n + r.missing, 0);
    } else {
      missing = (await this.scripts.transitionLines(id, lineOp, skus, groups, nowMs)).missing;
    }
    const expired = op === 'expire' || header.expired === '1';
    if (op === 'confirm' && missing > 0) {
      // Some lines expired between the check and the confirm: an order on a partial hold would
      // oversell, so the whole reservation is released instead.
      await this.scripts.transitionLines(id, 'release', skus, groups, nowMs).catch(async () => {
        await Promise.all(skus.map((sku, g) => this.scripts.transitionLines(id, 'release', [sku], [groups[g]!], nowMs)));
      });
      await this.scripts.finishReservation(id, 'released', '', true, retentionMs);
      throw new InventoryError('invalid_transition', `cannot confirm reservation ${id}: its hold expired`);
    }
    const target: ReservationState = op === 'confirm' ? 'confirmed' : op === 'fulfil' ? 'fulfilled' : 'released';
    await this.scripts.finishReservation(id, target, '', expired, retentionMs);
    return 'ok';
  }

  private async header(id: string): Promise<Header | undefined> {
    const raw = (await this.redis.hgetall(this.keys.reservation(id))) as unknown as Header;
    return raw.state ? raw : undefined;
  }

  async reservation(reservationId: string, nowMs: number): Promise<Reservation | undefined> {
    checkId('reservation id', reservationId);
    const header = await this.header(reservationId);
    if (!header) return undefined;
    let state = header.state as ReservationState | 'pending' | 'confirming' | 'fulfilling' | 'releasing';
    const expiresAtMs = Number(header.exp);
    let expired = header.expired === '1';
    // A hold past its expiry is released, whether or not the sweeper got to it yet.
    if ((state === 'held' || state === 'pending') && expiresAtMs <= nowMs) {
      state = 'released';
      expired = true;
    }
    const shown: ReservationState = state === 'pending' ? 'held' : state === 'confirming' ? 'held' : state === 'fulfilling' ? 'confirmed' : state === 'releasing' ? 'held' : state;
    const reservation: Reservation = {
      id: reservationId,
      channel: header.channel,
      state: shown,
      lines: JSON.parse(header.lines) as ReservationLine[],
      createdAtMs: Number(header.created),
      expiresAtMs: shown === 'held' ? expiresAtMs : 0,
    };
    if (header.short) reservation.shortfalls = JSON.parse(header.short) as Shortfall[];
    if (expired) reservation.expired = true;
    return reservation;
  }

  async locationStatuses(): Promise<Map<string, LocationStatus>> {
    const all = await this.redis.hgetall(this.keys.locationStatus());
    const out = new Map<string, LocationStatus>();
    // Values this version does not know (written by a newer one) are skipped, not trusted.
    for (const [id, status] of Object.entries(all)) if (status === 'paused' || status === 'active') out.set(id, status);
    return out;
  }

  async setLocationStatus(locationId: string, status: LocationStatus | undefined): Promise<void> {
    checkId('location', locationId);
    if (status === undefined) await this.redis.hdel(this.keys.locationStatus(), locationId);
    else await this.redis.hset(this.keys.locationStatus(), locationId, status);
  }

  async heldUntil(untilMs: number, limit: number): Promise<HeldReservation[]> {
    const shards = await Promise.all(Array.from({ length: reservationShards }, (_, shard) => this.redis.zrangebyscore(this.keys.dueShard(shard), '-inf', untilMs, 'WITHSCORES', 'LIMIT', 0, limit)));
    const held: HeldReservation[] = [];
    for (const flat of shards) for (let i = 0; i < flat.length; i += 2) held.push({ id: flat[i]!, expiresAtMs: Number(flat[i + 1]) });
    return held.sort((a, b) => a.expiresAtMs - b.expiresAtMs).slice(0, limit);
  }

  async claimExpiryNotice(reservationId: string): Promise<boolean> {
    checkId('reservation id', reservationId);
    return (await this.redis.set(this.keys.expiryNotice(reservationId), '1', 'PX', retentionMs, 'NX')) === 'OK';
  }

  async expireDue(nowMs: number, limit = expireBatchMax): Promise<number> {
    let expired = 0;
    for (let shard = 0; shard < reservationShards && expired < limit; shard++) {
      const dueIds = await this.redis.zrangebyscore(this.keys.dueShard(shard), '-inf', nowMs, 'LIMIT', 0, limit - expired);
      for (const id of dueIds) if (await this.expireOne(id, nowMs)) expired += 1;
    }
    return expired;
  }

  private async expireOne(id: string, nowMs: number): Promise<boolean> {
    const before = await this.header(id);
    if (!before) {
      await this.redis.zrem(this.keys.due(id), id);
      return false;
    }
    try {
      await this.runTransition(id, 'expire', nowMs);
    } catch (error) {
      // Busy: another process is handling it; the next sweep sees it again.
      if (!(error instanceof InventoryError)) throw error;
    }
    const after = await this.header(id);
    if (after?.state === 'pending' && Number(after.exp) <= nowMs) {
      // A hold whose caller died before finishing: its lines expire on their own; close the header.
      await this.scripts.finishReservation(id, 'released', '', true, retentionMs);
      return true;
    }
    invariant(!after || after.state !== 'held' || Number(after.exp) > nowMs, `reservation ${id} still held after its expiry`);
    return before.state === 'held' && Number(before.exp) <= nowMs;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
