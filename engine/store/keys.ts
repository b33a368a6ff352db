// Every Redis key of Instock comes from here. A SKU's positions and open reservation lines share
// the hash tag {sku}, so one script can touch all of them atomically, also in a Redis Cluster.
// Reservation headers are spread over `reservationShards` tags {rs<n>}; each shard has its own due
// set in the same slot, so creating a header and indexing its expiry is atomic.
// Three standalone-path scripts build keys themselves from the prefix (applyEvents.lua,
// holdBaskets.lua, readPositionsMany.lua): their names come from lua/includes/keys.lua, which
// spells this same layout. A SKU's read view and its stamp are named from its positions key in Lua
// (lua/includes/position.lua: viewKeysOf), which spells `view` and `viewStamp` below as well.

/** Reservation shards: enough to spread headers over a cluster's masters, few enough to sweep. */
export const reservationShards = 16;

export function shardOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % reservationShards;
}

export interface SkuKeys {
  /** Hash: location → packed position (see lua/includes/position.lua). */
  positions: string;
  /**
   * Sorted set of open reservation lines: "<reservationId>|<location>|<qty>" scored by the hold's
   * expiry in ms, -1 once confirmed (see lua/includes/expire.lua).
   */
  lines: string;
  /**
   * String: a token, then the SKU's positions as readers take them (lua/includes/expire.lua:
   * readAllPacked), made by a read and deleted by any write of a position
   * (lua/includes/position.lua), with a TTL.
   */
  view: string;
  /** String: the view's token alone, made and deleted with it (what a reader that decoded the view asks). */
  viewStamp: string;
}

export class KeyBuilder {
  constructor(readonly prefix = 'inv') {}

  sku(sku: string): SkuKeys {
    const tag = `{${sku}}`;
    return {
      positions: `${this.prefix}:p:${tag}`,
      lines: `${this.prefix}:o:${tag}`,
      view: this.view(sku),
      viewStamp: this.viewStamp(sku),
    };
  }

  /** SkuKeys.view alone. */
  view(sku: string): string {
    return `${this.prefix}:v:{${sku}}`;
  }

  /** SkuKeys.viewStamp alone (the read path builds twelve per basket). */
  viewStamp(sku: string): string {
    return `${this.prefix}:vs:{${sku}}`;
  }

  /** The 2 keys of a SKU group in the order every script takes them. */
  skuKeyList(sku: string): string[] {
    return [`${this.prefix}:p:{${sku}}`, `${this.prefix}:o:{${sku}}`];
  }

  /** Hash: eventId → asOf and qty (packed, lua/includes/position.lua), the adjustments of one position since its snapshot (absent when none). */
  adjustments(sku: string, location: string): string {
    return `${this.prefix}:a:{${sku}}:${location}`;
  }

  /** Hash: location id → admin status override ('paused' or 'active'), shared by every process. */
  locationStatus(): string {
    return `${this.prefix}:location-status`;
  }

  reservation(id: string): string {
    return `${this.prefix}:r:{rs${shardOf(id)}}:${id}`;
  }

  /** Sorted set of held reservation ids by expiry in the reservation's shard, swept by expireDue. */
  due(id: string): string {
    return this.dueShard(shardOf(id));
  }

  dueShard(shard: number): string {
    return `${this.prefix}:due:{rs${shard}}`;
  }

  /** String, set once (NX, with the header's retention): the reservation's expiry was published. */
  expiryNotice(id: string): string {
    return `${this.prefix}:xn:{rs${shardOf(id)}}:${id}`;
  }
}
