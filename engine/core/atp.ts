// Available-to-Promise: how physical stock becomes sellable stock in a channel (DESIGN.md).
//
// ATP(position, location, channel) = 0 if the location is paused or not in the channel, else
//   atp = max(0, onHand − reserved − buffer), buffer = units + ceil(percent × max(onHand, 0) / 100)
//   (the buffer of the location's type in the channel), then 0 if atp < channel.minThreshold,
//   then at most channel.atpCap.
// Channel ATP for a SKU = min(atpCap, sum of the positions' ATP over the channel's locations).
//
// Rounding: the percent part rounds up, so a buffer never protects less than asked (10% of 33 is
// 4 units, not 3). The percent is taken to 0.01% (basis points) and the product computed in
// integers, so the result is exact: no float residue such as 3.0000000000000004 rounding up to 4.
// A negative on-hand (deltas beyond the last count) has no percent buffer and ATP 0.

import { invariant, InvariantError } from './errors.js';
import type { BufferRule, Channel, Location } from './types.js';

export interface PositionView {
  onHand: number;
  reserved: number;
}

/** The rule a store needs to check ATP next to its data; structurally engine/store's LineRule. */
export interface LineRule {
  sellable: boolean;
  bufferUnits: number;
  bufferPercent: number;
  minThreshold: number;
}

const basisPointsPerPercent = 100;
const basisPointsWhole = 10_000;

export function bufferUnits(rule: BufferRule | undefined, onHand: number): number {
  if (!rule) return 0;
  return rule.units + percentUnits(basisPointsOf(rule.units, rule.percent), onHand);
}

/** The buffer rule checked, its percent in basis points. */
function basisPointsOf(units: number, percent: number): number {
  invariant(Number.isInteger(units) && units >= 0 && percent >= 0 && percent <= 100, () => `buffer rule ${JSON.stringify({ units, percent })}: expected units >= 0 and 0 <= percent <= 100`);
  return Math.round(percent * basisPointsPerPercent);
}

function percentUnits(basisPoints: number, onHand: number): number {
  // basisPoints × onHand ≤ 1e4 × 1e9 stays an exact integer; a non-multiple of 1e4 is at least
  // 1e-4 away from an integer after the division, far more than the division's rounding error.
  return basisPoints === 0 ? 0 : Math.ceil((basisPoints * Math.max(onHand, 0)) / basisPointsWhole);
}

// Channel location lists are read on every ATP: index each channel object once. The set also
// makes a location listed twice count once in channel ATP. Channels are treated as immutable
// values: a configuration reload builds new objects, which get a new index.
const channelLocationSets = new WeakMap<Channel, ReadonlySet<string>>();

function locationSet(channel: Channel): ReadonlySet<string> {
  let set = channelLocationSets.get(channel);
  if (!set) {
    set = new Set(channel.locations);
    channelLocationSets.set(channel, set);
  }
  return set;
}

export function channelHasLocation(channel: Channel, locationId: string): boolean {
  return locationSet(channel).has(locationId);
}

/** Whether a location offers anything in a channel at all. An unknown location offers nothing. */
export function isSellable(location: Location | undefined, channel: Channel): boolean {
  return location !== undefined && location.status === 'active' && channelHasLocation(channel, location.id);
}

/** Resolves the channel's rule for one location, for stores that check ATP in a script. */
export function lineRule(location: Location | undefined, channel: Channel): LineRule {
  const buffer = location ? channel.bufferByLocationType[location.type] : undefined;
  return { sellable: isSellable(location, channel), bufferUnits: buffer?.units ?? 0, bufferPercent: buffer?.percent ?? 0, minThreshold: channel.minThreshold };
}

/** ATP under an already resolved rule (the cap, if any, applied by the caller or by positionAtp). */
export function atpUnderRule(position: PositionView, rule: LineRule): number {
  if (!rule.sellable) {
    invariant(position.reserved >= 0, () => `reserved ${position.reserved} is negative`);
    return 0;
  }
  return ruleAtp(position.onHand, position.reserved, rule.bufferUnits, basisPointsOf(rule.bufferUnits, rule.bufferPercent), rule.minThreshold);
}

function ruleAtp(onHand: number, reserved: number, bufferUnits: number, basisPoints: number, minThreshold: number): number {
  // The message's closure in another function: a closure here that captures `reserved` makes V8
  // allocate a context on every call, even when the check passes (a fifth of reading a basket).
  if (reserved < 0) negativeReserved(reserved);
  const atp = Math.max(0, onHand - reserved - bufferUnits - percentUnits(basisPoints, onHand));
  return atp < minThreshold ? 0 : atp;
}

function negativeReserved(reserved: number): never {
  throw new InvariantError(`reserved ${reserved} is negative`);
}

/**
 * A sellable LineRule checked once, for many positions: a basket reads ~500, and resolving the
 * rule at each (atpUnderRule) was half the cost of turning them into the basket's ATP.
 */
export interface CompiledRule {
  bufferUnits: number;
  basisPoints: number;
  minThreshold: number;
  capUnits: number;
}

/** undefined when the rule sells nothing. */
export function compileRule(rule: LineRule, capUnits: number): CompiledRule | undefined {
  if (!rule.sellable) return undefined;
  return { bufferUnits: rule.bufferUnits, basisPoints: basisPointsOf(rule.bufferUnits, rule.bufferPercent), minThreshold: rule.minThreshold, capUnits };
}

/** min(atpUnderRule(position, rule), capUnits), for a compiled rule. */
export function compiledAtp(onHand: number, reserved: number, rule: CompiledRule): number {
  return Math.min(ruleAtp(onHand, reserved, rule.bufferUnits, rule.basisPoints, rule.minThreshold), rule.capUnits);
}

/** ATP of one position in a channel; `position` undefined means no stock was ever reported. */
export function positionAtp(position: PositionView | undefined, location: Location | undefined, channel: Channel): number {
  if (!position) return 0;
  const atp = atpUnderRule(position, lineRule(location, channel));
  return channel.atpCap === undefined ? atp : Math.min(atp, channel.atpCap);
}

/**
 * Channel ATP of one SKU: the sum over the channel's locations, capped.
 * `positionAt(locationId)` gives the SKU's position there (undefined if none).
 */
export function channelAtp(channel: Channel, locationOf: (locationId: string) => Location | undefined, positionAt: (locationId: string) => PositionView | undefined): number {
  let total = 0;
  for (const locationId of locationSet(channel)) total += positionAtp(positionAt(locationId), locationOf(locationId), channel);
  return channel.atpCap === undefined ? total : Math.min(total, channel.atpCap);
}
