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

/**
 * A token bucket per key: `ratePerSec` tokens a second, up to `burstSeconds` worth saved. Buckets
 * exist only for configured keys (at most apiKeysMax), so the map is bounded.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private readonly capacity: number;

  constructor(
    private readonly ratePerSec: number,
    burstSeconds = 2,
  ) {
    this.capacity = Math.max(1, ratePerSec * burstSeconds);
  }

  /** Takes a token; when none is left returns the ms until one is. */
  take(keyName: string, nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    let bucket = this.buckets.get(keyName);
    if (!bucket) {
      bucket = { tokens: this.capacity, atMs: nowMs };
      this.buckets.set(keyName, bucket);
    }
    const elapsedMs = Math.max(0, nowMs - bucket.atMs);
    bucket.tokens = Math.min(this.capacity, bucket.tokens + (elapsedMs * this.ratePerSec) / 1000);
    bucket.atMs = nowMs;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / this.ratePerSec) };
  }
}
