// Runs in a piscina worker thread: decodes and validates a whole batch of message values handed
// over as one transferred buffer, so the main thread only applies and commits.

import { decodeStockEvent, type Decoded } from './codec.js';

export interface DecodeTask {
  /** Every message value back to back; transferred, not copied. */
  buffer: ArrayBuffer;
  /** Byte length of each value in order; -1 for a message without a value. */
  lengths: number[];
  /** Known location ids; empty: no location check. */
  locations: readonly string[];
  /** Per message, the time an asOf is judged against (its Kafka timestamp). */
  times: number[];
}

let known: { key: string; set: Set<string> } | undefined;

export default function decodeBatch(task: DecodeTask): Decoded[] {
  // The location list rarely changes between batches: keep its set across tasks.
  const key = task.locations.join('\u0000');
  if (known?.key !== key) known = { key, set: new Set(task.locations) };
  const set = known.set;
  const locationExists = task.locations.length > 0 ? (id: string) => set.has(id) : undefined;
  const bytes = Buffer.from(task.buffer);
  const out: Decoded[] = new Array(task.lengths.length);
  let at = 0;
  task.lengths.forEach((length, i) => {
    if (length < 0) {
      out[i] = decodeStockEvent(null, { locationExists, nowMs: task.times[i]! });
      return;
    }
    out[i] = decodeStockEvent(bytes.subarray(at, at + length), { locationExists, nowMs: task.times[i]! });
    at += length;
  });
  return out;
}
