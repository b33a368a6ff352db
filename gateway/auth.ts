// API keys, scopes and per-key rate limits.
//
// Keys are kept only as SHA-256 digests and a presented key is compared with every configured
// digest with timingSafeEqual, always all of them: the time taken says nothing about which key or
// how much of it matched. Keys are never logged; a key's *name* is what metrics and logs show.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { HttpProblem } from './http.js';

export type Scope = 'availability:read' | 'reservations:write' | 'admin';
export const scopes: readonly Scope[] = ['availability:read', 'reservations:write', 'admin'];

export interface ApiKey {
  name: string;
  scopes: ReadonlySet<Scope>;
}

interface StoredKey extends ApiKey {
  digest: Buffer;
}

/** Keys configured at most: each request compares against all of them. */
export const apiKeysMax = 256;
/** A key shorter than this is too guessable to accept in configuration. */
export const apiKeyLengthMin = 16;
const presentedKeyLengthMax = 256;

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export class ApiKeyConfigError extends Error {
  override name = 'ApiKeyConfigError';
}

/** Parses GATEWAY_API_KEYS: `name:secret:scope+scope,…`. Errors say which entry and why, never the secret. */
export function parseApiKeys(raw: string): { name: string; secret: string; scopes: Scope[] }[] {
  const entries = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length > apiKeysMax) throw new ApiKeyConfigError(`GATEWAY_API_KEYS has ${entries.length} keys: at most ${apiKeysMax}`);
  const names = new Set<string>();
  return entries.map((entry, i) => {
    // Scopes contain a colon themselves (availability:read): name and secret are the first two parts.
    const parts = entry.split(':');
    if (parts.length < 3) throw new ApiKeyConfigError(`GATEWAY_API_KEYS entry ${i + 1}: expected name:secret:scope+scope, got ${parts.length} colon-separated part(s)`);
    const [name, secret] = parts as [string, string];
    const scopeList = parts.slice(2).join(':');
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new ApiKeyConfigError(`GATEWAY_API_KEYS entry ${i + 1}: name ${JSON.stringify(name)} must be 1-64 letters, digits, _ . or -`);
    if (names.has(name)) throw new ApiKeyConfigError(`GATEWAY_API_KEYS: key name ${JSON.stringify(name)} appears twice`);
    names.add(name);
    if (secret.length < apiKeyLengthMin) throw new ApiKeyConfigError(`GATEWAY_API_KEYS key ${JSON.stringify(name)}: the secret has ${secret.length} characters, at least ${apiKeyLengthMin} are required`);
    const keyScopes = scopeList.split('+').map((s) => s.trim());
    for (const s of keyScopes) {
      if (!(scopes as readonly string[]).includes(s)) throw new ApiKeyConfigError(`GATEWAY_API_KEYS key ${JSON.stringify(name)}: unknown scope ${JSON.stringify(s)} (scopes: ${scopes.join(', ')})`);
    }
    return { name, secret, scopes: keyScopes as Scope[] };
  });
}

/** A fresh random key for the embedded default (printed once at start). */
export function generateApiKey(): string {
  return `isk_${randomBytes(24).toString('base64url')}`;
}

export class ApiKeys {
  private readonly keys: StoredKey[];

  constructor(keys: { name: string; secret: string; scopes: readonly Scope[] }[]) {
    this.keys = keys.map((k) => ({ name: k.name, scopes: new Set(k.scopes), digest: digest(k.secret) }));
  }

  get size(): number {
    return this.keys.length;
  }

  /** The keys' names, in configuration order (the slots of shared rate buckets). */
  get names(): string[] {
    return this.keys.map((k) => k.name);
  }

  /** The key presented as `authorization: Bearer <key>` or `x-api-key`, or undefined. */
  identify(authorization: string, apiKeyHeader: string): ApiKey | undefined {
    let presented = apiKeyHeader;
    if (!presented && authorization) {
      const match = /^Bearer\s+(\S+)$/i.exec(authorization);
      if (!match) return undefined;
      presented = match[1]!;
    }
    if (!presented || presented.length > presentedKeyLengthMax) return undefined;
    const d = digest(presented);
    let found: StoredKey | undefined;
    for (const key of this.keys) {
      // No early exit: every digest is compared whatever matched.
      if (timingSafeEqual(d, key.digest) && !found) found = key;
    }
    return found;
  }

  /** The key or a 401/403 problem that says what to send. */
  require(authorization: string, apiKeyHeader: string, scope: Scope): ApiKey {
    if (!authorization && !apiKeyHeader) {
      throw new HttpProblem(401, 'Unauthorized', `this route needs an API key with scope ${scope}: send "authorization: Bearer <key>" or "x-api-key: <key>"`, {}, { 'www-authenticate': 'Bearer' });
    }
    const key = this.identify(authorization, apiKeyHeader);
    if (!key) throw new HttpProblem(401, 'Unauthorized', 'the API key is not valid: check GATEWAY_API_KEYS (or the key npm start printed)', {}, { 'www-authenticate': 'Bearer error="invalid_token"' });
    if (!key.scopes.has(scope)) {
      throw new HttpProblem(403, 'Forbidden', `the API key "${key.name}" lacks scope ${scope} (it has ${[...key.scopes].join(', ') || 'none'})`);
    }
    return key;
  }
}

/** Bytes of shared buckets per key: tokens and last refill (Float64), and a lock (Int32). */
const sharedBucketBytes = 20;

/**
 * Token buckets that every gateway thread of a process takes from (GATEWAY_THREADS > 1), one per
 * configured key in `names`' order: made by the main thread and handed to each thread, so that a
 * key's limit is the process's, not each thread's.
 */
export function sharedRateBuckets(keyCount: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, keyCount) * sharedBucketBytes);
}

/** Spins this many times on a bucket another thread holds, then waits for it 1 ms at a time. */
const lockSpins = 1_000;

/**
 * A token bucket per key: `ratePerSec` tokens a second, up to `burstSeconds` worth saved. Buckets
 * exist only for configured keys (at most apiKeysMax), so the map is bounded. With `shared`, the
 * buckets of the keys it names live in shared memory (sharedRateBuckets), taken under a lock per key.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private readonly capacity: number;
  private readonly slots: Map<string, number> | undefined;
  /** Per slot: tokens, then the last refill in ms (0: never taken). */
  private readonly cells: Float64Array | undefined;
  private readonly locks: Int32Array | undefined;

  constructor(
    private readonly ratePerSec: number,
    burstSeconds = 2,
    shared?: { buffer: SharedArrayBuffer; names: readonly string[] },
  ) {
    this.capacity = Math.max(1, ratePerSec * burstSeconds);
    if (shared) {
      const count = Math.floor(shared.buffer.byteLength / sharedBucketBytes);
      if (shared.names.length > count) throw new Error(`shared rate buckets hold ${count} keys, not ${shared.names.length}`);
      this.slots = new Map(shared.names.map((name, slot) => [name, slot]));
      this.cells = new Float64Array(shared.buffer, 0, 2 * count);
      this.locks = new Int32Array(shared.buffer, 16 * count, count);
    }
  }

  /** Takes a token; when none is left returns the ms until one is. */
  take(keyName: string, nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    const slot = this.slots?.get(keyName);
    if (slot === undefined || this.cells === undefined || this.locks === undefined) {
      let bucket = this.buckets.get(keyName);
      if (!bucket) {
        bucket = { tokens: this.capacity, atMs: nowMs };
        this.buckets.set(keyName, bucket);
      }
      const tokens = this.refill(bucket.tokens, bucket.atMs, nowMs);
      bucket.atMs = nowMs;
      bucket.tokens = tokens >= 1 ? tokens - 1 : tokens;
      return this.verdict(tokens);
    }
    const locks = this.locks;
    for (let spins = 0; Atomics.compareExchange(locks, slot, 0, 1) !== 0; spins++) if (spins >= lockSpins) Atomics.wait(locks, slot, 1, 1);
    let tokens: number;
    try {
      const cells = this.cells;
      const atMs = cells[2 * slot + 1]!;
      tokens = atMs === 0 ? this.capacity : this.refill(cells[2 * slot]!, atMs, nowMs);
      cells[2 * slot] = tokens >= 1 ? tokens - 1 : tokens;
      // Never behind the last taker's clock (threads' clocks are one, but calls interleave).
      cells[2 * slot + 1] = Math.max(atMs, nowMs);
    } finally {
      Atomics.store(locks, slot, 0);
      Atomics.notify(locks, slot, 1);
    }
    return this.verdict(tokens);
  }

  private refill(tokens: number, atMs: number, nowMs: number): number {
    return Math.min(this.capacity, tokens + (Math.max(0, nowMs - atMs) * this.ratePerSec) / 1000);
  }

  /** `tokens`: before this take. */
  private verdict(tokens: number): { ok: true } | { ok: false; retryAfterMs: number } {
    if (tokens >= 1) return { ok: true };
    return { ok: false, retryAfterMs: Math.ceil(((1 - tokens) * 1000) / this.ratePerSec) };
  }
}
