// Errors of the stores are the core's: a DomainError (a caller's mistake, with a code the gateway
// maps to a status) and InvariantError (a bug). InventoryError is the stores' name for DomainError.

export { DomainError as InventoryError, InvariantError, invariant } from '../core/errors.js';
export type { DomainErrorCode as InventoryErrorCode } from '../core/errors.js';
