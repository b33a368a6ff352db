// A generated history: stock events (with the source's duplicate eventIds, store sales with
// source "pos", receipts), reservation transitions (holds, confirms, releases) and ATP changes
// (per-position walks that touch 0), plus the answers the history must give, computed here
// independently of ClickHouse: what was sent, velocity per SKU, stock-out intervals.

import type { StockEvent } from '../../engine/core/types.js';
import type { AtpChange, ReservationTransition } from '../../engine/stream/wire.js';

/** A deterministic pseudo-random generator, so a failure can be replayed. */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

export interface GeneratedHistory {
  stock: StockEvent[];
  transitions: ReservationTransition[];
  changes: AtpChange[];
  /** Span of the generated times: [startMs, endMs]. */
  startMs: number;
  endMs: number;
}

export interface HistoryShape {
  stock: number;
  transitions: number;
  changes: number;
  skus?: number;
  locations?: number;
  /** Generated times spread over this long before endMs. */
  spanMs?: number;
  endMs: number;
  seed: number;
}

const channels = ['web', 'app', 'marketplace'];

/**
 * SKU popularity is skewed (sku-0 sells most): index = floor(n × r³), so a few SKUs take most of
 * the sales, as in the field.
 */
function skuOf(next: () => number, skus: number): string {
  return `sku-${Math.floor(skus * next() ** 3)}`;
}

export function generateHistory(shape: HistoryShape): GeneratedHistory {
  const next = random(shape.seed);
  const skus = shape.skus ?? 500;
  const locations = shape.locations ?? 6;
  const spanMs = shape.spanMs ?? 6 * 3_600_000;
  const startMs = shape.endMs - spanMs;
  const at = (i: number, n: number) => startMs + Math.floor((i / n) * spanMs) + Math.floor(next() * 1000);
  const stock: StockEvent[] = [];
  for (let i = 0; i < shape.stock; i++) {
    if (stock.length > 0 && next() < 0.05) {
      stock.push(stock[Math.floor(next() * stock.length)]!);
      continue;
    }
    const kind = next();
    const base = { eventId: `h${shape.seed}-${i}`, sku: skuOf(next, skus), location: `loc-${Math.floor(next() * locations)}`, asOf: Math.min(shape.endMs, at(i, shape.stock)) };
    if (kind < 0.2) stock.push({ type: 'snapshot', ...base, qty: Math.floor(next() * 200), source: 'erp' });
    else if (kind < 0.6) stock.push({ type: 'delta', ...base, qty: -(1 + Math.floor(next() * 3)), source: 'pos' });
    else if (kind < 0.8) stock.push({ type: 'delta', ...base, qty: 1 + Math.floor(next() * 20), source: 'wms' });
    else stock.push({ type: 'delta', ...base, qty: next() < 0.5 ? -1 : 2 });
  }
  const transitions: ReservationTransition[] = [];
  const held: ReservationTransition[] = [];
  for (let i = 0; i < shape.transitions; i++) {
    const atMs = Math.min(shape.endMs, at(i, shape.transitions));
    if (held.length > 0 && next() < 0.3) {
      // Each hold ends once: confirmed or released.
      const k = Math.floor(next() * held.length);
      const h = held[k]!;
      held[k] = held[held.length - 1]!;
      held.pop();
      transitions.push({ ...h, transition: next() < 0.7 ? 'confirmed' : 'released', atMs: Math.max(atMs, h.atMs) });
      delete (transitions[transitions.length - 1] as { expiresAtMs?: number }).expiresAtMs;
      continue;
    }
    const lineCount = 1 + Math.floor(next() * 3);
    const lines = Array.from({ length: lineCount }, () => ({ sku: skuOf(next, skus), location: `loc-${Math.floor(next() * locations)}`, qty: 1 + Math.floor(next() * 3) }));
    const hold: ReservationTransition = { reservationId: `r${shape.seed}-${i}`, channel: channels[Math.floor(next() * channels.length)]!, transition: 'held', lines, atMs, expiresAtMs: atMs + 600_000 };
    transitions.push(hold);
    held.push(hold);
  }
  // ATP changes: each position walks its on-hand with steps that often reach 0.
  const changes: AtpChange[] = [];
  const level = new Map<string, number>();
  for (let i = 0; i < shape.changes; i++) {
    const sku = `sku-${Math.floor(next() * Math.min(skus, 50))}`;
    const location = `loc-${Math.floor(next() * Math.min(locations, 3))}`;
    const key = `${sku}/${location}`;
    const before = level.get(key) ?? Math.floor(next() * 5);
    const after = next() < 0.15 ? 0 : Math.max(0, before + Math.floor(next() * 7) - 3);
    level.set(key, after);
    const reserved = after > 0 && next() < 0.1 ? after : 0;
    const visibleAtMs = Math.min(shape.endMs, at(i, shape.changes));
    changes.push({ sku, location, onHand: after, reserved, version: i + 1, atp: {}, visibleAtMs, asOfMs: visibleAtMs - 5 });
  }
  return { stock, transitions, changes, startMs, endMs: shape.endMs };
}

/** Units reserved (held lines) or sold in store (pos negative deltas) per SKU at or after fromMs. */
export function expectedVelocity(h: GeneratedHistory, fromMs: number, toMs: number, channel?: string): Map<string, number> {
  const units = new Map<string, number>();
  const add = (sku: string, n: number) => units.set(sku, (units.get(sku) ?? 0) + n);
  for (const t of h.transitions) {
    if (t.transition !== 'held' || t.atMs < fromMs || t.atMs > toMs || (channel && t.channel !== channel)) continue;
    for (const l of t.lines) add(l.sku, l.qty);
  }
  if (!channel || channel === 'pos') {
    for (const e of h.stock) if (e.type === 'delta' && e.source === 'pos' && e.qty < 0 && e.asOf >= fromMs && e.asOf <= toMs) add(e.sku, -e.qty);
  }
  return units;
}

export interface StockoutInterval {
  sku: string;
  location: string;
  startMs: number;
  endMs: number | null;
}

/**
 * Intervals where on-hand − reserved <= 0, from each position's changes in (visibleAtMs, order
 * sent) order; a position out at its first change is out from then.
 */
export function expectedStockouts(changes: readonly AtpChange[]): StockoutInterval[] {
  const byPosition = new Map<string, AtpChange[]>();
  for (const c of changes) {
    const key = `${c.sku}\u0000${c.location}`;
    let list = byPosition.get(key);
    if (!list) byPosition.set(key, (list = []));
    list.push(c);
  }
  const out: StockoutInterval[] = [];
  for (const list of byPosition.values()) {
    const sorted = list.map((c, i) => ({ c, i })).sort((a, b) => a.c.visibleAtMs - b.c.visibleAtMs || a.i - b.i);
    let open: StockoutInterval | undefined;
    for (const { c } of sorted) {
      const isOut = c.onHand - c.reserved <= 0;
      if (isOut && !open) open = { sku: c.sku, location: c.location, startMs: c.visibleAtMs, endMs: null };
      else if (!isOut && open) {
        open.endMs = c.visibleAtMs;
        out.push(open);
        open = undefined;
      }
    }
    if (open) out.push(open);
  }
  return out;
}

/** Rows a history of this shape stores: one per stock event, per change, per reservation line. */
export function expectedRows(h: GeneratedHistory): { stock_events: number; atp_changes: number; reservation_transitions: number } {
  return { stock_events: h.stock.length, atp_changes: h.changes.length, reservation_transitions: h.transitions.reduce((n, t) => n + t.lines.length, 0) };
}
