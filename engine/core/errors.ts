// Two kinds of failure, kept apart on purpose (STYLE.md): a DomainError is something a caller can
// cause (bad request, impossible transition) and carries a code the gateway maps to a status and a
// message that says what was wrong and what to do; an InvariantError is something only a bug can
// cause, and the process should crash rather than write a wrong number.

export type DomainErrorCode =
  | 'invalid_id'
  | 'invalid_quantity'
  | 'invalid_ttl'
  | 'invalid_request'
  | 'unknown_channel'
  | 'unknown_location'
  | 'empty_basket'
  | 'basket_too_large'
  | 'unknown_reservation'
  | 'invalid_transition'
  | 'hold_expired';

export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly code: DomainErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export class InvariantError extends Error {
  override name = 'InvariantError';
}

/**
 * Throws an InvariantError when `condition` is false: for states only a bug can produce. Pass the
 * message as a function where the check runs per position or per event: it is then only built on
 * failure (a template with JSON.stringify on every call cost a fifth of an availability request).
 */
export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(typeof message === 'function' ? message() : message);
}
