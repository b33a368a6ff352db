import { describe, expect, it } from 'vitest';
import { ExpiryWatch } from '../../gateway/expiries.js';

describe('ExpiryWatch (holds by expiry)', () => {
  it('returns exactly the due holds, earliest first, across random adds and partial takes', () => {
    let seed = 42;
    const next = () => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
    const watch = new ExpiryWatch();
    const model: { id: string; expiresAtMs: number; checkAtMs: number }[] = [];
    for (let round = 0; round < 200; round++) {
      for (let k = 0; k < 20; k++) {
        const at = Math.floor(next() * 10_000);
        const hold = { id: `r${round}-${k}`, expiresAtMs: at, checkAtMs: at };
        watch.add(hold);
        model.push(hold);
      }
      const nowMs = round * 50;
      const limit = 1 + Math.floor(next() * 15);
      const got = watch.due(nowMs, limit);
      const due = model.filter((h) => h.checkAtMs <= nowMs).sort((a, b) => a.checkAtMs - b.checkAtMs);
      expect(got.map((h) => h.checkAtMs)).toEqual(due.slice(0, limit).map((h) => h.checkAtMs));
      for (const h of got) model.splice(model.indexOf(h), 1);
      expect(watch.size).toBe(model.length);
    }
    const rest = watch.due(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    expect(rest.map((h) => h.checkAtMs)).toEqual(model.map((h) => h.checkAtMs).sort((a, b) => a - b));
  });

  it('watches a hold once however often it is added, and again once taken', () => {
    const watch = new ExpiryWatch();
    expect(watch.add({ id: 'r', expiresAtMs: 5, checkAtMs: 5 })).toBe(true);
    expect(watch.add({ id: 'r', expiresAtMs: 5, checkAtMs: 1 })).toBe(false);
    expect(watch.size).toBe(1);
    expect(watch.dropped).toBe(0);
    expect(watch.due(5, 10).map((h) => h.checkAtMs)).toEqual([5]);
    expect(watch.add({ id: 'r', expiresAtMs: 5, checkAtMs: 9 })).toBe(true);
    expect(watch.due(9, 10).map((h) => h.id)).toEqual(['r']);
  });

  it('stops watching at its bound and counts what it dropped', () => {
    const watch = new ExpiryWatch(3);
    for (let i = 0; i < 5; i++) watch.add({ id: `r${i}`, expiresAtMs: i, checkAtMs: i });
    expect(watch.size).toBe(3);
    expect(watch.dropped).toBe(2);
    expect(watch.due(10, 10).map((h) => h.id)).toEqual(['r0', 'r1', 'r2']);
  });
});
