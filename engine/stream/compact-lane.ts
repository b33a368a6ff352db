// The cold lane's FIFO: waiting events packed as bytes in 1 MiB slabs, about 50 bytes per event
// instead of ~230 for an event object, its strings and its queue item. The cold lane is the one
// that piles up (a backlog after a restart, an overload), and its bound decides how much of a
// backlog is read once and held, rather than skipped and read again from Kafka (engine.ts, "Cold
// overflow"). Bytes off the JavaScript heap also spare the garbage collector: events held as
// objects for seconds were promoted and marked, packed ones die young as decoded.
//
// Record: u8 flags (1 snapshot, 2 has source), f64 qty, f64 asOf, u16 byte lengths of sku,
// location, eventId and source, then those strings in UTF-8. Tickets stay objects, one reference
// per event in a parallel array.

import type { StockEvent } from '../core/types.js';
import type { VelocityTier } from '../core/velocity.js';
import type { Ticket } from './pipeline.js';

export interface LaneItem {
  event: StockEvent;
  ticket: Ticket;
  tier: VelocityTier;
}

const slabBytes = 1 << 20;
const headerBytes = 1 + 8 + 8 + 2 * 4;
const flagSnapshot = 1;
const flagSource = 2;

export class CompactLane {
  /** Slabs still holding unread records, oldest first; ends[i] is where slab i's records stop. */
  private slabs: Buffer[] = [];
  private ends: number[] = [];
  private writeAt = 0;
  private readAt = 0;
  private tickets: (Ticket | undefined)[] = [];
  private head = 0;

  constructor(private readonly tier: VelocityTier) {}

  get length(): number {
    return this.tickets.length - this.head;
  }

  /** Bytes held in slabs (at most one slab more than the records need). */
  get bytes(): number {
    return this.slabs.length * slabBytes;
  }

  push(item: LaneItem): void {
    const e = item.event;
    const room = headerBytes + 3 * (e.sku.length + e.location.length + e.eventId.length + (e.source?.length ?? 0));
    let slab = this.slabs[this.slabs.length - 1];
    if (!slab || this.writeAt + room > slabBytes) {
      if (slab) this.ends[this.ends.length - 1] = this.writeAt;
      slab = Buffer.allocUnsafe(Math.max(slabBytes, room));
      this.slabs.push(slab);
      this.ends.push(0);
      this.writeAt = 0;
    }
    const at = this.writeAt;
    let p = at + headerBytes;
    const skuBytes = slab.write(e.sku, p, 'utf8');
    p += skuBytes;
    const locationBytes = slab.write(e.location, p, 'utf8');
    p += locationBytes;
    const idBytes = slab.write(e.eventId, p, 'utf8');
    p += idBytes;
    const sourceBytes = e.source === undefined ? 0 : slab.write(e.source, p, 'utf8');
    p += sourceBytes;
    slab[at] = (e.type === 'snapshot' ? flagSnapshot : 0) | (e.source === undefined ? 0 : flagSource);
    slab.writeDoubleLE(e.qty, at + 1);
    slab.writeDoubleLE(e.asOf, at + 9);
    slab.writeUInt16LE(skuBytes, at + 17);
    slab.writeUInt16LE(locationBytes, at + 19);
    slab.writeUInt16LE(idBytes, at + 21);
    slab.writeUInt16LE(sourceBytes, at + 23);
    this.writeAt = p;
    this.ends[this.ends.length - 1] = p;
    this.tickets.push(item.ticket);
  }

  shift(): LaneItem | undefined {
    if (this.head >= this.tickets.length) return undefined;
    // A slab read to its end is dropped (the last one is kept for writing).
    while (this.readAt >= this.ends[0]! && this.slabs.length > 1) {
      this.slabs.shift();
      this.ends.shift();
      this.readAt = 0;
    }
    const slab = this.slabs[0]!;
    const at = this.readAt;
    const flags = slab[at]!;
    let p = at + headerBytes;
    const sku = slab.toString('utf8', p, (p += slab.readUInt16LE(at + 17)));
    const location = slab.toString('utf8', p, (p += slab.readUInt16LE(at + 19)));
    const eventId = slab.toString('utf8', p, (p += slab.readUInt16LE(at + 21)));
    const sourceBytes = slab.readUInt16LE(at + 23);
    const event: StockEvent = { type: flags & flagSnapshot ? 'snapshot' : 'delta', eventId, sku, location, qty: slab.readDoubleLE(at + 1), asOf: slab.readDoubleLE(at + 9) };
    if (flags & flagSource) event.source = slab.toString('utf8', p, (p += sourceBytes));
    this.readAt = p;
    const ticket = this.tickets[this.head]!;
    this.tickets[this.head++] = undefined;
    if (this.head > 4_096 && this.head * 2 > this.tickets.length) {
      this.tickets = this.tickets.slice(this.head);
      this.head = 0;
    }
    if (this.head === this.tickets.length) this.reset();
    return { event, ticket, tier: this.tier };
  }

  /** Removes the items `drop` says so (rebalance, rewind); returns them. Rebuilds the slabs. */
  remove(drop: (item: LaneItem) => boolean): LaneItem[] {
    const kept: LaneItem[] = [];
    const removed: LaneItem[] = [];
    for (let item = this.shift(); item; item = this.shift()) (drop(item) ? removed : kept).push(item);
    for (const item of kept) this.push(item);
    return removed;
  }

  /** Empty: start over in the newest slab (no slab kept half-read). */
  private reset(): void {
    this.slabs = this.slabs.slice(-1);
    this.ends = this.slabs.map(() => 0);
    this.writeAt = 0;
    this.readAt = 0;
    this.tickets = [];
    this.head = 0;
  }
}
