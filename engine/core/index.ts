// The domain core: plain functions and types, no I/O. Stores, the engine and the gateway import
// from here.

export * from './types.js';
export * from './errors.js';
export * from './validate.js';
export * from './snapshot-order.js';
export * from './position.js';
export * from './atp.js';
export * from './reservation.js';
export * from './velocity.js';
