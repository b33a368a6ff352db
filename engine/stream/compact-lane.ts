// The cold lane's FIFO: waiting events packed as bytes in 1 MiB slabs, about 50 bytes per event
// instead of ~230 for an event object, its strings and its queue item. The cold lane is the one
// that piles up (a backlog after a restart, an overload). Bytes off the JavaScript heap also spare
// the garbage collector: events held as objects for seconds were promoted and marked, packed ones
// die young as decoded.
//
// Spill: past `memoryBytes`, full slabs are written to files in a directory of their own and read
// back when their turn comes (the slab being read and the one being written stay in memory). So
// an overload's cold backlog costs disk, not memory, and the engine keeps reading Kafka (hot
// events do not wait behind a paused partition) for as long as the lane's event bound allows. The
// files are scratch: a crash loses them and nothing else, since no offset is committed past an
// event that is still waiting (engine.ts), so Kafka delivers them again.
//
// Record: u8 flags (1 snapshot, 2 has source), f64 qty, f64 asOf, u16 byte lengths of sku,
// location, eventId and source, then those strings in UTF-8. A raw record (flag 4: a message kept
// undecoded while reading is behind, engine.ts) has f64 timestamp, f64 offset, u16 byte length of
// its key, u16 partition and u32 byte length of its value, then the key and the value's bytes.
// Tickets stay objects, one per run of consecutive events with the same ticket (a delivered
// batch's cold events arrive together).

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StockEvent } from '../core/types.js';
import type { VelocityTier } from '../core/velocity.js';
import type { Ticket } from './pipeline.js';

export interface LaneItem {
  event: StockEvent;
  ticket: Ticket;
  tier: VelocityTier;
}

/** A Kafka message waiting undecoded: its key is the SKU it waits under. */
export interface RawEvent {
  key: string;
  /** The message's value (a shifted item gets a copy of its own). */
  value: Buffer;
  /** The message's timestamp (what its asOf is judged against). */
  time: number;
  partition: number;
  offset: number;
}

export interface RawItem {
  raw: RawEvent;
  ticket: Ticket;
  tier: VelocityTier;
}

export interface SpillOptions {
  /** Parent directory: the lane writes its slabs in a directory of its own there, made at the first spill. */
  dir: string;
  /** Slab bytes kept in memory before full slabs go to disk (at least two slabs). */
  memoryBytes: number;
}

export const slabBytes = 1 << 20;
const headerBytes = 1 + 8 + 8 + 2 * 4;
const flagSnapshot = 1;
const flagSource = 2;
const flagRaw = 4;
/** Spill directories are named after their process, so a later one can remove a dead one's. */
const spillDirPrefix = 'instock-cold-lane-';

interface Slab {
  /** The records, or undefined while they are on disk in `file`. */
  buffer: Buffer | undefined;
  file: string | undefined;
  /** Where the records stop. */
  end: number;
}

interface Run {
  ticket: Ticket;
  count: number;
  /** Handed back (rebalance, rewind): its events are skipped when their turn comes. */
  dropped: boolean;
}

export class CompactLane {
  /** Slabs still holding unread records, oldest first: [0] is read, the last is written. */
  private slabs: Slab[] = [];
  private readAt = 0;
  private runs: Run[] = [];
  private runHead = 0;
  /** Records not read yet, and of those the ones not dropped. */
  private records = 0;
  private live = 0;
  private spillDir: string | undefined;
  private spillSeq = 0;
  private spilled = 0;

  /** `onSkip` gets the SKU of each dropped event as it leaves the lane (the pipeline's per-SKU count). */
  constructor(
    private readonly tier: VelocityTier,
    private readonly spill?: SpillOptions,
    private readonly onSkip?: (sku: string) => void,
  ) {
    if (spill && !(spill.memoryBytes >= 2 * slabBytes)) throw new Error(`cold lane spill: memoryBytes must be at least ${2 * slabBytes} (two slabs), got ${spill.memoryBytes}`);
  }

  /** Events waiting (dropped ones excluded). */
  get length(): number {
    return this.live;
  }

  /** Slab bytes held in memory (at most one slab more than the records need, or the spill's bound). */
  get bytes(): number {
    return this.memorySlabs() * slabBytes;
  }

  /** Slabs written to disk and not read back yet. */
  get spilledSlabs(): number {
    return this.spilled;
  }

  push(item: LaneItem): void {
    const e = item.event;
    const tail = this.tailWithRoom(headerBytes + 3 * (e.sku.length + e.location.length + e.eventId.length + (e.source?.length ?? 0)));
    const slab = tail.buffer!;
    const at = tail.end;
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
    tail.end = p;
    this.counted(item.ticket);
  }

  /** Queues a message undecoded (shift returns it as a RawItem). */
  pushRaw(raw: RawEvent, ticket: Ticket): void {
    const tail = this.tailWithRoom(headerBytes + 3 * raw.key.length + raw.value.length);
    const slab = tail.buffer!;
    const at = tail.end;
    let p = at + headerBytes;
    const keyBytes = slab.write(raw.key, p, 'utf8');
    p += keyBytes;
    p += raw.value.copy(slab, p);
    slab[at] = flagRaw;
    slab.writeDoubleLE(raw.time, at + 1);
    slab.writeDoubleLE(raw.offset, at + 9);
    slab.writeUInt16LE(keyBytes, at + 17);
    slab.writeUInt16LE(raw.partition, at + 19);
    slab.writeUInt32LE(raw.value.length, at + 21);
    tail.end = p;
    this.counted(ticket);
  }

  /** The slab to write a record of `room` bytes at most in (a new one if the last is full). */
  private tailWithRoom(room: number): Slab {
    let tail = this.slabs[this.slabs.length - 1];
    if (!tail || tail.end + room > tail.buffer!.length) {
      if (tail && this.spill && this.slabs.length > 1 && this.memorySlabs() * slabBytes >= this.spill.memoryBytes) this.spillSlab(tail);
      tail = { buffer: Buffer.allocUnsafe(Math.max(slabBytes, room)), file: undefined, end: 0 };
      this.slabs.push(tail);
    }
    return tail;
  }

  /** One more record under the ticket: extends the last run, or starts one. */
  private counted(ticket: Ticket): void {
    const last = this.runs[this.runs.length - 1];
    if (last && last.ticket === ticket && !last.dropped && this.runs.length > this.runHead) last.count += 1;
    else this.runs.push({ ticket, count: 1, dropped: false });
    this.records += 1;
    this.live += 1;
  }

  shift(): LaneItem | RawItem | undefined {
    while (this.records > 0) {
      // A slab read to its end is dropped (the last one is kept for writing); the next is loaded.
      while (this.readAt >= this.slabs[0]!.end && this.slabs.length > 1) {
        this.slabs.shift();
        this.readAt = 0;
        this.load(this.slabs[0]!);
      }
      const slab = this.slabs[0]!.buffer!;
      const at = this.readAt;
      const flags = slab[at]!;
      let p = at + headerBytes;
      const sku = slab.toString('utf8', p, (p += slab.readUInt16LE(at + 17)));
      const run = this.runs[this.runHead]!;
      const { ticket, dropped } = run;
      if (--run.count === 0) {
        this.runHead += 1;
        if (this.runHead > 1_024 && this.runHead * 2 > this.runs.length) {
          this.runs = this.runs.slice(this.runHead);
          this.runHead = 0;
        }
      }
      this.records -= 1;
      const raw = (flags & flagRaw) !== 0;
      if (dropped) {
        this.readAt = raw ? p + slab.readUInt32LE(at + 21) : p + slab.readUInt16LE(at + 19) + slab.readUInt16LE(at + 21) + slab.readUInt16LE(at + 23);
        if (this.records === 0) this.reset();
        this.onSkip?.(sku);
        continue;
      }
      if (raw) {
        const end = p + slab.readUInt32LE(at + 21);
        // A copy: the slab's bytes are written over once the lane empties (reset).
        const value = Buffer.from(slab.subarray(p, end));
        this.readAt = end;
        this.live -= 1;
        if (this.records === 0) this.reset();
        return { raw: { key: sku, value, time: slab.readDoubleLE(at + 1), offset: slab.readDoubleLE(at + 9), partition: slab.readUInt16LE(at + 19) }, ticket, tier: this.tier };
      }
      const location = slab.toString('utf8', p, (p += slab.readUInt16LE(at + 19)));
      const eventId = slab.toString('utf8', p, (p += slab.readUInt16LE(at + 21)));
      const sourceBytes = slab.readUInt16LE(at + 23);
      const event: StockEvent = { type: flags & flagSnapshot ? 'snapshot' : 'delta', eventId, sku, location, qty: slab.readDoubleLE(at + 1), asOf: slab.readDoubleLE(at + 9) };
      if (flags & flagSource) event.source = slab.toString('utf8', p, (p += sourceBytes));
      this.readAt = p;
      this.live -= 1;
      if (this.records === 0) this.reset();
      return { event, ticket, tier: this.tier };
    }
    return undefined;
  }

  /**
   * Drops the waiting events of the tickets `drop` names (rebalance, rewind): O(runs), not
   * O(events) and no disk read; their records are skipped when their turn comes. Returns how many.
   */
  dropTickets(drop: (ticket: Ticket) => boolean): number {
    let count = 0;
    for (let i = this.runHead; i < this.runs.length; i++) {
      const run = this.runs[i]!;
      if (run.dropped || !drop(run.ticket)) continue;
      run.dropped = true;
      count += run.count;
    }
    this.live -= count;
    return count;
  }

  /** Removes the spill directory (the engine is stopping; what waits is not committed). */
  close(): void {
    if (this.spillDir) rmSync(this.spillDir, { recursive: true, force: true });
    this.spillDir = undefined;
  }

  private memorySlabs(): number {
    let n = 0;
    for (const slab of this.slabs) if (slab.buffer) n += 1;
    return n;
  }

  /** Writes a full slab (not the one being read) to its file and lets its memory go. */
  private spillSlab(slab: Slab): void {
    this.spillDir ??= makeSpillDir(this.spill!.dir, this.tier);
    const file = join(this.spillDir, `${this.spillSeq++}.slab`);
    writeFileSync(file, slab.buffer!.subarray(0, slab.end));
    slab.buffer = undefined;
    slab.file = file;
    this.spilled += 1;
  }

  private load(slab: Slab): void {
    if (slab.buffer || !slab.file) return;
    slab.buffer = readFileSync(slab.file);
    unlinkSync(slab.file);
    slab.file = undefined;
    this.spilled -= 1;
  }

  /** Empty: start over in the newest slab (no slab kept half-read). */
  private reset(): void {
    this.slabs = this.slabs.slice(-1);
    this.slabs[0]!.end = 0;
    this.readAt = 0;
    this.runs = [];
    this.runHead = 0;
  }
}

/** A directory for this process's spilled slabs; removes those of processes no longer running. */
function makeSpillDir(parent: string, tier: VelocityTier): string {
  mkdirSync(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    const pid = Number(/^instock-cold-lane-(\d+)-/.exec(name)?.[1]);
    if (pid > 0 && pid !== process.pid && !running(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
  return mkdtempSync(join(parent, `${spillDirPrefix}${process.pid}-${tier}-`));
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
