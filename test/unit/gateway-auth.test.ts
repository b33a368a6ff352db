import { describe, expect, it } from 'vitest';
import { ApiKeyConfigError, ApiKeys, RateLimiter, generateApiKey, parseApiKeys, sharedRateBuckets } from '../../gateway/auth.js';
import { HttpProblem } from '../../gateway/http.js';

const secret = 'secret-0123456789abcdef';

describe('API keys', () => {
  it('parses name:secret:scopes entries', () => {
    expect(parseApiKeys(`shop:${secret}:availability:read+reservations:write, ops:${secret}x:admin`)).toEqual([
      { name: 'shop', secret, scopes: ['availability:read', 'reservations:write'] },
      { name: 'ops', secret: `${secret}x`, scopes: ['admin'] },
    ]);
  });

  it('refuses bad entries with a message naming the entry and never the secret', () => {
    const cases = [`shop:${secret}`, `shop:short:admin`, `shop:${secret}:root`, `bad name:${secret}:admin`, `a:${secret}:admin,a:${secret}y:admin`];
    for (const raw of cases) {
      let error: unknown;
      try {
        parseApiKeys(raw);
      } catch (e) {
        error = e;
      }
      expect(error, raw).toBeInstanceOf(ApiKeyConfigError);
      expect((error as Error).message).not.toContain(secret);
    }
  });

  it('identifies a key by bearer token or x-api-key and enforces scopes', () => {
    const keys = new ApiKeys([{ name: 'shop', secret, scopes: ['availability:read'] }]);
    expect(keys.require(`Bearer ${secret}`, '', 'availability:read').name).toBe('shop');
    expect(keys.require('', secret, 'availability:read').name).toBe('shop');
    const status = (auth: string, header: string, scope: 'availability:read' | 'admin') => {
      try {
        keys.require(auth, header, scope);
        return 200;
      } catch (e) {
        return (e as HttpProblem).status;
      }
    };
    expect(status('', '', 'availability:read')).toBe(401);
    expect(status(`Bearer ${secret}x`, '', 'availability:read')).toBe(401);
    expect(status(`Basic ${secret}`, '', 'availability:read')).toBe(401);
    expect(status(`Bearer ${secret}`, '', 'admin')).toBe(403);
  });

  it('generates distinct, long random keys', () => {
    const a = generateApiKey();
    expect(a).toMatch(/^isk_[A-Za-z0-9_-]{32}$/);
    expect(generateApiKey()).not.toBe(a);
  });
});

describe('rate limiter', () => {
  it('allows a burst of 2 s worth, then refills at the rate', () => {
    const limiter = new RateLimiter(10);
    let ok = 0;
    for (let i = 0; i < 30; i++) if (limiter.take('k', 1_000).ok) ok++;
    expect(ok).toBe(20);
    const refused = limiter.take('k', 1_000);
    expect(refused).toEqual({ ok: false, retryAfterMs: 100 });
    expect(limiter.take('k', 1_100).ok).toBe(true);
    expect(limiter.take('k', 1_100).ok).toBe(false);
    // Keys have their own buckets.
    expect(limiter.take('other', 1_100).ok).toBe(true);
  });

  it('is one limit for every thread that shares its buckets', () => {
    const buffer = sharedRateBuckets(2);
    // Two threads' limiters, as each gateway thread makes its own over the process's buffer.
    const [a, b] = [new RateLimiter(10, undefined, { buffer, names: ['k', 'other'] }), new RateLimiter(10, undefined, { buffer: structuredClone(buffer), names: ['k', 'other'] })];
    let ok = 0;
    for (let i = 0; i < 30; i++) if ((i % 2 === 0 ? a : b).take('k', 1_000).ok) ok++;
    expect(ok).toBe(20);
    expect(b.take('k', 1_000)).toEqual({ ok: false, retryAfterMs: 100 });
    expect(a.take('k', 1_100).ok).toBe(true);
    expect(b.take('k', 1_100).ok).toBe(false);
    expect(b.take('other', 1_100).ok).toBe(true);
    // A key the buffer does not name has a bucket of the thread's own.
    expect(a.take('unlisted', 1_100).ok).toBe(true);
    expect(() => new RateLimiter(10, undefined, { buffer, names: ['x', 'y', 'z'] })).toThrow(/hold 2 keys, not 3/);
  });
});
