// The network the gateway answers from: the configuration file's content plus the location
// statuses set through `PUT /v1/locations/{id}/status`. An admin pause is an operational switch
// (a store flooded, a DC on strike), so it survives a reload of the file until it is lifted; the
// file's own status is what "active" returns to.
//
// Every change builds new objects: the core caches per-network indexes by object identity, and a
// request that started with one network finishes with it.

import type { LocationStatus } from '../engine/core/types.js';
import type { NetworkConfig } from '../engine/network/config.js';

export class NetworkState {
  private file: NetworkConfig;
  private readonly overrides = new Map<string, LocationStatus>();
  private effective: NetworkConfig;
  private readonly listeners = new Set<(network: NetworkConfig) => void>();

  constructor(network: NetworkConfig) {
    this.file = network;
    this.effective = network;
  }

  current(): NetworkConfig {
    return this.effective;
  }

  /** A new configuration from the file (already validated). */
  reload(network: NetworkConfig): void {
    this.file = network;
    for (const id of [...this.overrides.keys()]) if (!network.locations.some((l) => l.id === id)) this.overrides.delete(id);
    this.rebuild();
  }

  /** Pauses or resumes a location; returns false for an unknown id. */
  setStatus(locationId: string, status: LocationStatus): boolean {
    const location = this.file.locations.find((l) => l.id === locationId);
    if (!location) return false;
    if (status === location.status) this.overrides.delete(locationId);
    else this.overrides.set(locationId, status);
    this.rebuild();
    return true;
  }

  onChange(listener: (network: NetworkConfig) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private rebuild(): void {
    this.effective =
      this.overrides.size === 0
        ? this.file
        : { ...this.file, locations: this.file.locations.map((l) => (this.overrides.has(l.id) ? { ...l, status: this.overrides.get(l.id)! } : l)) };
    for (const listener of this.listeners) listener(this.effective);
  }
}
