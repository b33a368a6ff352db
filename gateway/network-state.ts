// The network the gateway answers from: the configuration file's content plus the location
// statuses set through `PUT /v1/locations/{id}/status`. An admin pause is an operational switch
// (a store flooded, a DC on strike), so it survives a reload of the file until it is lifted; the
// file's own status is what "active" returns to.
//
// Every change builds new objects: the core caches per-network indexes by object identity, and a
// request that started with one network finishes with it.
//
// Shared across processes through the store (`board`): a status set here is written to the store
// first, and every process on that store (other gateways, `instock engine` for its change feed)
// reads the store's statuses every `follow` interval. The store holds only overrides: setting a
// location back to its file status clears its override.

import type { LocationStatus } from '../engine/core/types.js';
import type { NetworkConfig } from '../engine/network/config.js';

/** Where statuses are shared (the inventory store). */
export interface StatusBoard {
  locationStatuses(): Promise<Map<string, LocationStatus>>;
  setLocationStatus(locationId: string, status: LocationStatus | undefined): Promise<void>;
}

/** What the CLIs report when the shared statuses cannot be read: the ones in force stay (the file's at start). */
export function statusReadFailed(error: unknown): void {
  process.stderr.write(`location statuses could not be read from the store, the ones in force stay: ${error instanceof Error ? error.message : String(error)}\n`);
}

/** How often a process reads the shared statuses: a pause reaches every process within this. */
export const statusFollowMsDefault = 1_000;

export class NetworkState {
  private file: NetworkConfig;
  private overrides = new Map<string, LocationStatus>();
  private effective: NetworkConfig;
  private readonly listeners = new Set<(network: NetworkConfig) => void>();

  constructor(
    network: NetworkConfig,
    private readonly board?: StatusBoard,
  ) {
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

  /** Pauses or resumes a location, in the shared board first; returns false for an unknown id. */
  async setStatus(locationId: string, status: LocationStatus): Promise<boolean> {
    const location = this.file.locations.find((l) => l.id === locationId);
    if (!location) return false;
    const override = status === location.status ? undefined : status;
    await this.board?.setLocationStatus(locationId, override);
    if (override === undefined) this.overrides.delete(locationId);
    else this.overrides.set(locationId, override);
    this.rebuild();
    return true;
  }

  /** Takes the board's statuses (those of locations in the file); rebuilds only on a difference. */
  async refresh(): Promise<void> {
    if (!this.board) return;
    const shared = await this.board.locationStatuses();
    const next = new Map<string, LocationStatus>();
    for (const [id, status] of shared) {
      const location = this.file.locations.find((l) => l.id === id);
      if (location && location.status !== status) next.set(id, status);
    }
    if (next.size === this.overrides.size && [...next].every(([id, status]) => this.overrides.get(id) === status)) return;
    this.overrides = next;
    this.rebuild();
  }

  /**
   * Reads the board now (resolved once read, so a caller serves with the statuses in force) and
   * every `everyMs`; resolves to the stop. A failed read keeps the statuses it has (the file's at
   * start) and calls onError, at most once a minute (not once a second through an outage).
   */
  async follow(everyMs = statusFollowMsDefault, onError: (error: unknown) => void = () => {}): Promise<() => void> {
    if (!this.board) return () => {};
    let running = false;
    let reportedMs = -Infinity;
    const tick = async () => {
      if (running) return;
      running = true;
      await this.refresh()
        .catch((error: unknown) => {
          if (Date.now() - reportedMs < 60_000) return;
          reportedMs = Date.now();
          onError(error);
        })
        .finally(() => (running = false));
    };
    await tick();
    const timer = setInterval(() => void tick(), everyMs);
    timer.unref();
    return () => clearInterval(timer);
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
