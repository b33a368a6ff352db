// One event-loop turn per answer computed after a store read: a queue of continuations released
// one per setImmediate, so the loop polls for I/O between two of them.
//
// Why: with Redis, replies arrive in bursts (one socket read holds the replies of every request
// in flight) and resolve together. Computing every answer of the burst back to back blocked the
// loop for ~20 ms at a time (event-loop delay p99, measured) while Redis sat idle, since the
// requests that came in meanwhile were not read, so their reads were not sent. Then Redis worked
// through the next burst while the loop idled: the two took turns instead of overlapping (gateway
// ~70 % busy, Redis ~48 %). A turn each lets the loop read new requests and send their store reads
// between two answers. Measured on the Redis store: event-loop delay p99 16-25 -> 4-5 ms, 1,000-1,330
// -> 1,400-1,800 requests/s (12-line baskets). Not with the in-memory store: its reads resolve at
// once, there is no burst to spread, and a turn per answer cost it 10-20 %.

const waiting: (() => void)[] = [];
let scheduled = false;

function release(): void {
  const next = waiting.shift();
  // Scheduled from the check phase, the next release runs in the next loop iteration, after a poll.
  if (waiting.length > 0) setImmediate(release);
  else scheduled = false;
  next?.();
}

/** Resolves in a loop turn of its own, after those asked for before it. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!scheduled) {
      scheduled = true;
      setImmediate(release);
    }
  });
}
