// The inventory as callers see it: a store plus the network (locations, channels). It resolves
// channel rules for the store (so a hold's ATP check runs next to the data), refuses unknown
// channels and locations, and turns positions into channel ATP with the core's rules.

import { channelAtp, lineRule, positionAtp } from './core/atp.js';
import type { Channel, Location } from './core/types.js';
import { InventoryError } from './store/errors.js';
import type { InventoryStore, PositionState, Reservation } from './store/types.js';

export interface Network {
  locations: readonly Location[];
  channels: readonly Channel[];
}

export interface HoldInput {
  reservationId: string;
  channel: string;
  lines: { sku: string; location: string; qty: number }[];
  holdTtlMs: number;
  nowMs: number;
}

export interface PositionWithAtp extends PositionState {
  /** ATP of this position per channel id. */
  atp: Record<string, number>;
}

export class Inventory {
  private locations = new Map<string, Location>();
  private channels = new Map<string, Channel>();

  constructor(
    readonly store: InventoryStore,
    network: Network,
  ) {
    this.setNetwork(network);
  }

  /** Swaps the network atomically (configuration reload): later calls see the new rules. */
  setNetwork(network: Network): void {
    this.locations = new Map(network.locations.map((l) => [l.id, l]));
    this.channels = new Map(network.channels.map((c) => [c.id, c]));
  }

  channel(id: string): Channel {
    const channel = this.channels.get(id);
    if (!channel) throw new InventoryError('unknown_channel', `channel ${JSON.stringify(id)} is not configured: known channels are ${[...this.channels.keys()].join(', ')}`);
    return channel;
  }

  async hold(input: HoldInput): Promise<Reservation> {
    const channel = this.channel(input.channel);
    const lines = input.lines.map((line, i) => {
      const location = this.locations.get(line.location);
      if (!location) throw new InventoryError('unknown_location', `line ${i}: location ${JSON.stringify(line.location)} is not in the network configuration`);
      const rule = lineRule(location, channel);
      return { ...line, rule: channel.atpCap === undefined ? rule : { ...rule, capUnits: channel.atpCap } };
    });
    return this.store.hold({ reservationId: input.reservationId, channel: channel.id, lines, holdTtlMs: input.holdTtlMs, nowMs: input.nowMs });
  }

  /** Channel ATP of a SKU: the sum over the channel's locations, capped. */
  async channelAtp(sku: string, channelId: string, nowMs: number): Promise<number> {
    const channel = this.channel(channelId);
    const positions = new Map((await this.store.positions(sku, nowMs)).map((p) => [p.location, p]));
    return channelAtp(channel, (id) => this.locations.get(id), (id) => positions.get(id));
  }

  /** Every position of a SKU with its ATP in each channel (the admin view). */
  async positionsWithAtp(sku: string, nowMs: number): Promise<PositionWithAtp[]> {
    const positions = await this.store.positions(sku, nowMs);
    return positions.map((p) => ({
      ...p,
      atp: Object.fromEntries([...this.channels.values()].map((channel) => [channel.id, positionAtp(p, this.locations.get(p.location), channel)])),
    }));
  }
}
