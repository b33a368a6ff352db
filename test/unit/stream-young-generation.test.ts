import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { semiSpaceHint, semiSpaceMb, semiSpaceMbRecommended } from '../../engine/stream/young-generation.js';

describe('the engine young generation flag', () => {
  it('reads --max-semi-space-size from node flags and NODE_OPTIONS, the command line last', () => {
    expect(semiSpaceMb([], undefined)).toBeUndefined();
    expect(semiSpaceMb(['--enable-source-maps'], '--max-old-space-size=4096')).toBeUndefined();
    expect(semiSpaceMb(['--max-semi-space-size=64'], undefined)).toBe(64);
    expect(semiSpaceMb(['--max_semi_space_size', '32'], undefined)).toBe(32);
    expect(semiSpaceMb([], '--enable-source-maps --max-semi-space-size=128')).toBe(128);
    // node reads NODE_OPTIONS first: its command line wins.
    expect(semiSpaceMb(['--max-semi-space-size=64'], '--max-semi-space-size=16')).toBe(64);
  });

  it('hints only below the recommended size', () => {
    expect(semiSpaceHint(undefined)).toMatch(/default semi-space.*--max-semi-space-size=64/);
    expect(semiSpaceHint(16)).toMatch(/running with --max-semi-space-size=16/);
    expect(semiSpaceHint(semiSpaceMbRecommended)).toBeUndefined();
    expect(semiSpaceHint(256)).toBeUndefined();
  });

  it('is what a node started with the flag sees, and the flag gives V8 the larger young generation', () => {
    // The young generation's reserved size is what the flag sets; V8 grows into it under load.
    const probe = "const v8=require('node:v8'); const s=v8.getHeapSpaceStatistics().find((x)=>x.space_name==='new_space'); let keep=[]; for (let i=0;i<3e6;i++){ keep.push({i}); if (keep.length>400000) keep=[]; } const t=v8.getHeapSpaceStatistics().find((x)=>x.space_name==='new_space'); console.log(JSON.stringify({ argv: process.execArgv.filter((a)=>a.startsWith('--max')), size: t.space_size }))";
    const run = (flags: string[]) => JSON.parse(execFileSync(process.execPath, [...flags, '-e', probe], { env: { ...process.env, NODE_OPTIONS: '' } }).toString()) as { argv: string[]; size: number };
    const plain = run([]);
    const large = run([`--max-semi-space-size=${semiSpaceMbRecommended}`]);
    expect(semiSpaceMb(plain.argv, '')).toBeUndefined();
    expect(semiSpaceMb(large.argv, '')).toBe(semiSpaceMbRecommended);
    expect(large.size).toBeGreaterThan(2 * plain.size);
  });
});
