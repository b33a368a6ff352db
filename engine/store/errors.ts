// Errors a caller can cause, each with a code the gateway maps to an HTTP status and a message
// that says what was wrong. Nothing is changed in the store when one is thrown.

export type InventoryErrorCode =
  | 'invalid_quantity'
  | 'invalid_id'
  | 'unknown_channel'
  | 'unknown_location'
  | 'empty_basket'
  | 'basket_too_large'
  | 'invalid_ttl'
  | 'unknown_reservation'
  | 'invalid_transition';

export class InventoryError extends Error {
  override name = 'InventoryError';
  constructor(
    readonly code: InventoryErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A broken invariant: only a bug causes it. Crash rather than write a wrong number. */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
