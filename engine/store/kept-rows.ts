// The rows a store keeps with one SKU's positions as they stand (readRows in types.ts): one per
// RowCells, that is per channel read lately. Whoever keeps them drops them when the positions change.

import type { RowCells } from './types.js';

/** Rows kept per SKU: the channels read lately (a network has a handful). */
const rowsKept = 4;

export class KeptRows {
  /** Newest last. */
  private readonly rows: { cells: RowCells; row: Float64Array }[] = [];

  /** The row kept for `cells`, or undefined. */
  find(cells: RowCells): Float64Array | undefined {
    for (const kept of this.rows) if (kept.cells === cells) return kept.row;
    return undefined;
  }

  /** Keeps `row` for `cells`, dropping the oldest past the bound; returns it. */
  keep(cells: RowCells, row: Float64Array): Float64Array {
    if (this.rows.length >= rowsKept) this.rows.shift();
    this.rows.push({ cells, row });
    return row;
  }
}
