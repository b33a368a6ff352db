// The total order of snapshots of one position. Every store and every replica must pick the same
// "current" snapshot from the same set of events whatever order they arrived in, so equal source
// times need a deterministic tie-break that depends on the events alone.
//
// Order: asOf, then snapshotTie(eventId) (31 bits of an FNV-1a hash, which the Redis scripts pack
// into a position's 4 bytes beside the -1 of a folded base), then the eventId string itself, so
// that even a hash collision has one answer.
// A base folded from adjustments at the bound (position.ts) has tie -1: any real snapshot at the
// same asOf outranks it, which is right, as a real count at that time includes everything before.

/** The top 31 bits of the 32-bit FNV-1a of the eventId's UTF-16 code units (0 … 2^31 − 1). */
export function snapshotTie(eventId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < eventId.length; i++) {
    hash ^= eventId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 1;
}

/** Tie of a base folded from adjustments: below every real snapshot at the same asOf. */
export const foldedTie = -1;

export interface SnapshotRank {
  asOfMs: number;
  /** null for a folded base (or no snapshot at all). */
  eventId: string | null;
}

/** Negative if a ranks below b, positive if above, 0 only for the same snapshot. */
export function compareSnapshots(a: SnapshotRank, b: SnapshotRank): number {
  if (a.asOfMs !== b.asOfMs) return a.asOfMs < b.asOfMs ? -1 : 1;
  const tieA = a.eventId === null ? foldedTie : snapshotTie(a.eventId);
  const tieB = b.eventId === null ? foldedTie : snapshotTie(b.eventId);
  if (tieA !== tieB) return tieA < tieB ? -1 : 1;
  const idA = a.eventId ?? '';
  const idB = b.eventId ?? '';
  return idA === idB ? 0 : idA < idB ? -1 : 1;
}
