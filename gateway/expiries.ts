// The holds this gateway placed, by expiry time, so that their expiry is published: when a hold
// expires, the store releases its units lazily (at the next read or write of the SKU, or when the
// sweeper passes), and nothing tells live stock or the reservations topic. At each hold's expiry
// the gateway reads it back and, once it is released as expired, publishes the `expired`
// transition and its positions' ATP (GatewayService.publishExpiries). Confirmed, fulfilled or
// released holds are dropped: their own transition was published when it happened.
//
// A min-heap on expiry time, one entry per hold id; bounded: past `max` watched holds, new ones are
// not watched (counted), and their expiry shows at the next change of their positions. Holds placed
// by other gateways, or before a restart, are found in the store (GatewayService scans the holds
// due soon), and the store lets one gateway only publish each expiry (claimExpiryNotice).

export interface WatchedHold {
  id: string;
  /** When the hold lapses: the time its `expired` transition carries. */
  expiresAtMs: number;
  /** When to read it back (its expiry, or later after a failed read): the heap's order. */
  checkAtMs: number;
}

export class ExpiryWatch {
  private readonly heap: WatchedHold[] = [];
  private readonly ids = new Set<string>();
  /** Holds not watched because the watch was full. */
  dropped = 0;

  constructor(readonly max = 1_000_000) {}

  get size(): number {
    return this.heap.length;
  }

  /** false when the hold is watched already, or the watch is full (counted in `dropped`). */
  add(hold: WatchedHold): boolean {
    if (this.ids.has(hold.id)) return false;
    if (this.heap.length >= this.max) {
      this.dropped += 1;
      return false;
    }
    const heap = this.heap;
    heap.push(hold);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.checkAtMs <= hold.checkAtMs) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = hold;
    this.ids.add(hold.id);
    return true;
  }

  /** Removes and returns the holds to check at `nowMs` (checkAtMs <= nowMs), earliest first, at most `limit`. */
  due(nowMs: number, limit: number): WatchedHold[] {
    const out: WatchedHold[] = [];
    while (out.length < limit && this.heap.length > 0 && this.heap[0]!.checkAtMs <= nowMs) out.push(this.pop());
    return out;
  }

  private pop(): WatchedHold {
    const heap = this.heap;
    const top = heap[0]!;
    this.ids.delete(top.id);
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right]!.checkAtMs < heap[left]!.checkAtMs ? right : left;
        if (heap[child]!.checkAtMs >= last.checkAtMs) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
