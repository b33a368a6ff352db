import { describe, expect, it } from 'vitest';
import { settlesWithin } from '../../engine/wait.js';

describe('settlesWithin', () => {
  it('says whether the work settled in time, and passes a rejection on', async () => {
    expect(await settlesWithin(new Promise((r) => setTimeout(r, 5)), 1_000)).toBe(true);
    let done = false;
    const slow = new Promise<void>((r) => setTimeout(() => r(void (done = true)), 200));
    expect(await settlesWithin(slow, 10)).toBe(false);
    expect(done).toBe(false);
    await expect(settlesWithin(Promise.reject(new Error('refused')), 1_000)).rejects.toThrow('refused');
  });
});
