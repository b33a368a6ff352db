// What the gateway's routes do, apart from HTTP: read live positions from the store, turn them
// into channel ATP with the core's rules, ask the sourcing core for options, and run reservations
// through the inventory. Reads always go to the store: there is no response cache, so an answer is
// never older than the store.
//
// Side effects of reservations (velocity, history, live stock) leave through `GatewayFeeds` after
// the answer is decided; they never delay or fail a request.

import { compiledAtp, compileRule, lineRule, positionAtp, type CompiledRule } from '../engine/core/atp.js';
import { availabilityOptions, channelColumns, skuAvailability, type AvailabilityAnswer, type SkuAvailability } from '../engine/core/sourcing.js';
import type { Channel, Location } from '../engine/core/types.js';
import { DomainError } from '../engine/core/errors.js';
import { validateHoldRequest, validateReservationId } from '../engine/core/validate.js';
import { Inventory, type PositionWithAtp } from '../engine/inventory.js';
import type { NetworkConfig } from '../engine/network/config.js';
import type { InventoryStore, Reservation, RowCells, Transition } from '../engine/store/types.js';
import type { AvailabilitySample } from '../engine/history/writer.js';
import type { AtpChange, ReservationTransition } from '../engine/stream/wire.js';
import { ExpiryWatch } from './expiries.js';
import { HttpProblem } from './http.js';
import type { NetworkState } from './network-state.js';
import type { AvailabilityBody, GeoPoint, SkusBody } from './requests.js';

/** A sampled availability request, as history stores it (no personal data). */
export type { AvailabilitySample } from '../engine/history/writer.js';

/** Where the gateway's side effects go: in-process listeners (embedded) or Kafka topics. */
export interface GatewayFeeds {
  transitions(transitions: ReservationTransition[]): void;
  changes(changes: AtpChange[]): void;
  availabilitySample?(sample: AvailabilitySample): void;
}

export const noFeeds: GatewayFeeds = { transitions: () => {}, changes: () => {} };

export type KnownSkuAvailability = SkuAvailability & { known: boolean };

type AtpTable = Map<string, Map<string, number>>;

/** How often the watched holds are checked for expiry (expiries.ts), and how many per check. */
const expiryCheckMs = 250;
const expiryCheckMax = 500;
/**
 * How often the store's holds due soon (within twice this) are added to the watch: those placed by
 * another gateway that stopped, or by this one before a restart.
 */
const holdScanMs = 5_000;

export class GatewayService {
  readonly inventory: Inventory;
  /** Holds placed here or found in the store, by expiry: their expiry is published (expiries.ts). */
  readonly expiries = new ExpiryWatch();
  private nextHoldScanMs = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryCheck: Promise<void> | undefined;
  private lastHoldMs = 0;
  private readonly matrices = new MatrixPool();

  private readonly clock: () => number;
  private readonly expiryCheckMs: number | false;

  constructor(
    readonly store: InventoryStore,
    readonly network: NetworkState,
    private readonly feeds: GatewayFeeds = noFeeds,
    /** clock: the gateway's (tests fix it); expiryCheckMs false: no timer, the caller runs publishExpiries. */
    options: { clock?: () => number; expiryCheckMs?: number | false } = {},
  ) {
    this.inventory = new Inventory(store, network.current());
    network.onChange((n) => this.inventory.setNetwork(n));
    this.clock = options.clock ?? Date.now;
    this.expiryCheckMs = options.expiryCheckMs ?? expiryCheckMs;
    if (this.expiryCheckMs !== false) {
      this.expiryTimer = setInterval(() => void this.publishExpiries(this.clock()), this.expiryCheckMs);
      // Never what keeps a process alive.
      this.expiryTimer.unref();
    }
  }

  /** Stops the expiry timer (holds still watched are published by another gateway, or after a restart). */
  close(): void {
    clearInterval(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  channel(network: NetworkConfig, id: string): Channel {
    const channel = network.channels.find((c) => c.id === id);
    if (!channel) throw new DomainError('unknown_channel', `channel ${JSON.stringify(id)} is not configured: known channels are ${network.channels.map((c) => c.id).join(', ')}`);
    return channel;
  }

  /**
   * The SKUs' channel ATP read live, as a matrix (row = SKU, column = channelColumns'), with which
   * SKUs have a position anywhere. No object per position: a basket reads ~500.
   */
  private async atpMatrix(network: NetworkConfig, channel: Channel, skus: string[], nowMs: number): Promise<{ matrix: Float64Array; known: Uint8Array; columns: ReadonlyMap<string, number> }> {
    const cells = channelCells(network, channel);
    const { columns, width: cols } = cells;
    const matrix = this.matrices.take(skus.length * cols);
    const known = new Uint8Array(skus.length);
    if (this.store.readRows) {
      const rows = await this.store.readRows(skus, nowMs, cells);
      for (let line = 0; line < rows.length; line++) {
        const row = rows[line];
        if (row === undefined) continue;
        known[line] = 1;
        matrix.set(row, line * cols);
      }
      return { matrix, known, columns };
    }
    await this.store.forEachPosition(skus, nowMs, columns, (line, c, onHand, reserved) => {
      known[line] = 1;
      // -1: a location not among the channel's columns.
      if (c >= 0) matrix[line * cols + c] = cells.cell(c, onHand, reserved);
    });
    return { matrix, known, columns };
  }

  /** atpMatrix as a map per SKU of the locations with ATP. */
  private async atpTable(network: NetworkConfig, channel: Channel, skus: string[], nowMs: number): Promise<{ table: AtpTable; known: Uint8Array }> {
    const { matrix, known, columns } = await this.atpMatrix(network, channel, skus, nowMs);
    const table: AtpTable = new Map();
    skus.forEach((sku, i) => {
      const row = new Map<string, number>();
      for (const [location, c] of columns) {
        const atp = matrix[i * columns.size + c]!;
        if (atp > 0) row.set(location, atp);
      }
      table.set(sku, row);
    });
    this.matrices.give(matrix);
    return { table, known };
  }

  async availability(body: AvailabilityBody, nowMs: number): Promise<AvailabilityAnswer> {
    const network = this.network.current();
    const channel = this.channel(network, body.channel);
    if (body.pickup?.locations) {
      const known = locationIndex(network);
      for (const id of body.pickup.locations) {
        if (!known.has(id)) throw new DomainError('unknown_location', `pickup.locations: ${JSON.stringify(id)} is not a location of the network`);
      }
    }
    const skus = body.lines.map((l) => l.sku);
    const { matrix, known } = await this.atpMatrix(network, channel, skus, nowMs);
    try {
      known.forEach((seen, i) => {
        if (seen === 0) throw new HttpProblem(422, 'Unprocessable Content', `lines[${i}].sku ${JSON.stringify(body.lines[i]!.sku)} is unknown: no location has reported stock for it`, { code: 'unknown_sku' });
      });
      return availabilityOptions(
        network,
        {
          channel: channel.id,
          lines: body.lines,
          ...(body.destination ? { destination: body.destination } : {}),
          ...(body.pickup ? { pickup: body.pickup } : {}),
          methods: body.methods,
          nowMs,
        },
        matrix,
      );
    } finally {
      // The answer keeps no reference to the matrix.
      this.matrices.give(matrix);
    }
  }

  recordAvailability(sample: AvailabilitySample): void {
    this.feeds.availabilitySample?.(sample);
  }

  /** PLP: an unknown SKU (no position anywhere) answers known: false rather than failing the page. */
  async skus(body: SkusBody, nowMs: number): Promise<KnownSkuAvailability[]> {
    const network = this.network.current();
    const channel = this.channel(network, body.channel);
    const { table, known } = await this.atpTable(network, channel, body.skus, nowMs);
    const atpAt = (sku: string, location: string) => table.get(sku)?.get(location) ?? 0;
    return body.skus.map((sku, i) => ({ ...skuAvailability(network, { channel: channel.id, sku, ...(body.near ? { near: body.near } : {}), nowMs }, atpAt), known: known[i] === 1 }));
  }

  async sku(query: { sku: string; channel: string; near?: GeoPoint }, nowMs: number): Promise<KnownSkuAvailability> {
    const [answer] = await this.skus({ channel: query.channel, skus: [query.sku], ...(query.near ? { near: query.near } : {}) }, nowMs);
    return answer!;
  }

  async positions(sku: string, nowMs: number): Promise<PositionWithAtp[]> {
    return this.inventory.positionsWithAtp(sku, nowMs);
  }

  /** Holds every line or none; the same reservationId returns the first outcome. */
  async hold(input: unknown, requestMs: number): Promise<{ reservation: Reservation; fresh: boolean }> {
    // Each hold of this process gets a distinct time, so that "created now" tells a first outcome
    // from a replayed one (the store returns the first outcome, with the first call's time). A retry
    // reaching another gateway in the very same ms would count twice in velocity, never in stock.
    const nowMs = Math.max(requestMs, this.lastHoldMs + 1);
    this.lastHoldMs = nowMs;
    const network = this.network.current();
    const locations = locationIndex(network);
    const request = validateHoldRequest(input, { channelExists: (id) => network.channels.some((c) => c.id === id), locationExists: (id) => locations.has(id) });
    const reservation = await this.inventory.hold({ reservationId: request.reservationId, channel: request.channel, lines: [...request.lines], holdTtlMs: request.holdTtlMs, nowMs });
    const fresh = reservation.createdAtMs === nowMs;
    if (fresh) {
      this.feeds.transitions([
        {
          reservationId: reservation.id,
          channel: reservation.channel,
          transition: reservation.state === 'rejected' ? 'rejected' : 'held',
          lines: reservation.lines,
          atMs: nowMs,
          ...(reservation.state === 'held' ? { expiresAtMs: reservation.expiresAtMs } : {}),
        },
      ]);
      if (reservation.state === 'held') {
        void this.publishChanges(reservation, nowMs);
        this.watchExpiry(reservation);
      }
    }
    return { reservation, fresh };
  }

  private watchExpiry(reservation: Reservation): void {
    this.expiries.add({ id: reservation.id, expiresAtMs: reservation.expiresAtMs, checkAtMs: reservation.expiresAtMs });
  }

  /**
   * Reads back the watched holds due at nowMs: those released as expired publish the `expired`
   * transition and their positions' ATP, if this gateway is the first to claim it; those still
   * held (a clock ahead of the store's) wait again; the rest published their own transition
   * already. Every holdScanMs, the store's holds due soon join the watch first. One check at a
   * time, its position reads included (at most expiryCheckMax holds a check).
   */
  publishExpiries(nowMs: number): Promise<void> {
    this.expiryCheck ??= (async () => {
      if (nowMs >= this.nextHoldScanMs) {
        this.nextHoldScanMs = nowMs + holdScanMs;
        try {
          for (const held of await this.store.heldUntil(nowMs + 2 * holdScanMs, expiryCheckMax)) this.expiries.add({ ...held, checkAtMs: held.expiresAtMs });
        } catch {
          // The store is unreachable: the next scan tries again.
          this.nextHoldScanMs = nowMs + expiryCheckMs;
        }
      }
      const due = this.expiries.due(nowMs, expiryCheckMax);
      await Promise.all(
        due.map(async (hold) => {
          let claimed = false;
          let reservation: Reservation | undefined;
          try {
            reservation = await this.store.reservation(hold.id, nowMs);
            if (reservation?.state === 'held') {
              this.expiries.add({ ...hold, checkAtMs: Math.max(reservation.expiresAtMs, nowMs + expiryCheckMs) });
              return;
            }
            // Another gateway may watch it too: the store lets one publish it.
            if (reservation?.state === 'released' && reservation.expired) claimed = await this.store.claimExpiryNotice(reservation.id);
          } catch {
            // The store is unreachable: try again at the next check.
            this.expiries.add({ ...hold, checkAtMs: nowMs + expiryCheckMs });
            return;
          }
          if (!claimed || !reservation) return;
          this.feeds.transitions([{ reservationId: reservation.id, channel: reservation.channel, transition: 'expired', lines: reservation.lines, atMs: hold.expiresAtMs }]);
          await this.publishChanges(reservation, nowMs);
        }),
      );
    })().finally(() => {
      this.expiryCheck = undefined;
    });
    return this.expiryCheck;
  }

  async transition(reservationId: string, transition: Transition, nowMs: number): Promise<Reservation> {
    const id = validateReservationId(reservationId);
    const before = await this.store.reservation(id, nowMs);
    const reservation = await this.store.transition(id, transition, nowMs);
    if (!before || before.state !== reservation.state) {
      const kind = reservation.state === 'released' && reservation.expired ? 'expired' : reservation.state;
      if (kind !== 'held' && kind !== 'rejected') {
        this.feeds.transitions([{ reservationId: id, channel: reservation.channel, transition: kind, lines: reservation.lines, atMs: nowMs }]);
      }
      void this.publishChanges(reservation, nowMs);
    }
    return reservation;
  }

  async reservation(reservationId: string, nowMs: number): Promise<Reservation | undefined> {
    return this.store.reservation(validateReservationId(reservationId), nowMs);
  }

  /** ATP changes of the positions a reservation touched, read after the fact, for live stock. Never rejects. */
  private publishChanges(reservation: Reservation, nowMs: number): Promise<void> {
    const skus = [...new Set(reservation.lines.map((l) => l.sku))];
    const touched = new Set(reservation.lines.map((l) => `${l.sku}\u0000${l.location}`));
    return Promise.all(skus.map((sku) => this.store.positions(sku, nowMs)))
      .then((all) => {
        const network = this.network.current();
        const locations = locationIndex(network);
        const visibleAtMs = Date.now();
        const changes: AtpChange[] = [];
        for (const p of all.flat()) {
          if (!touched.has(`${p.sku}\u0000${p.location}`)) continue;
          const location = locations.get(p.location);
          const atp = Object.fromEntries(network.channels.map((c) => [c.id, positionAtp(p, location, c)]));
          changes.push({ sku: p.sku, location: p.location, onHand: p.onHand, reserved: p.reserved, version: p.version, atp, visibleAtMs });
        }
        if (changes.length > 0) this.feeds.changes(changes);
      })
      .catch(() => {
        // Live stock is best effort: the next stock event or reservation publishes the position again.
      });
  }

  /** Channel ATP of SKUs (for live stock): one read per SKU. */
  async channelAtps(channelId: string, skus: string[], nowMs: number): Promise<Map<string, number>> {
    const network = this.network.current();
    const channel = this.channel(network, channelId);
    const { table } = await this.atpTable(network, channel, skus, nowMs);
    const out = new Map<string, number>();
    for (const sku of skus) {
      let total = 0;
      for (const atp of table.get(sku)!.values()) total += atp;
      out.set(sku, channel.atpCap === undefined ? total : Math.min(total, channel.atpCap));
    }
    return out;
  }
}

/**
 * A channel's columns (channelColumns) and each column's rule, compiled once per network object
 * (the same ATP as core positionAtp), undefined where nothing is sellable. As RowCells, a SKU's
 * channel ATP per column, which a store with readRows keeps until the SKU's positions change.
 */
class ChannelCells implements RowCells {
  readonly width: number;

  constructor(
    readonly columns: ReadonlyMap<string, number>,
    private readonly rules: readonly (CompiledRule | undefined)[],
  ) {
    this.width = rules.length;
  }

  cell(column: number, onHand: number, reserved: number): number {
    const rule = this.rules[column];
    return rule ? compiledAtp(onHand, reserved, rule) : 0;
  }
}

const cellsByColumns = new WeakMap<ReadonlyMap<string, number>, ChannelCells>();

function channelCells(network: NetworkConfig, channel: Channel): ChannelCells {
  const columns = channelColumns(network, channel.id);
  let cells = cellsByColumns.get(columns);
  if (!cells) {
    const locations = locationIndex(network);
    const rules = new Array<CompiledRule | undefined>(columns.size).fill(undefined);
    for (const [location, c] of columns) rules[c] = compileRule(lineRule(locations.get(location), channel), channel.atpCap ?? Number.MAX_SAFE_INTEGER);
    cells = new ChannelCells(columns, rules);
    cellsByColumns.set(columns, cells);
  }
  return cells;
}

/**
 * Spare ATP matrices by length: allocating a basket's (12 lines × 42 locations, 4 KB off the
 * heap) cost a tenth of reading its ~500 positions. A matrix is given back once its answer is
 * built (answers keep no reference to it); at most `perLength` are kept of each length.
 */
class MatrixPool {
  private readonly spare = new Map<number, Float64Array[]>();
  private static readonly perLength = 8;
  private static readonly lengthsMax = 256;

  take(length: number): Float64Array {
    const matrix = this.spare.get(length)?.pop();
    return matrix === undefined ? new Float64Array(length) : matrix.fill(0);
  }

  give(matrix: Float64Array): void {
    let list = this.spare.get(matrix.length);
    if (list === undefined) {
      if (this.spare.size >= MatrixPool.lengthsMax) return;
      this.spare.set(matrix.length, (list = []));
    }
    if (list.length < MatrixPool.perLength) list.push(matrix);
  }
}

const locationIndexes = new WeakMap<NetworkConfig, Map<string, Location>>();

export function locationIndex(network: NetworkConfig): Map<string, Location> {
  let index = locationIndexes.get(network);
  if (!index) {
    index = new Map(network.locations.map((l) => [l.id, l]));
    locationIndexes.set(network, index);
  }
  return index;
}
