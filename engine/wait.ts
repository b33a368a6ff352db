// Bounded waits: a stop, a rebalance or a start-up waits for work in flight, but never forever.

/**
 * Waits for `work` at most `limitMs`: true if it settled in time, false if the time ran out first
 * (the work goes on). A rejection of `work` in time rejects. The timer goes as soon as either ends.
 */
export async function settlesWithin(work: Promise<unknown>, limitMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), limitMs)))]);
  } finally {
    clearTimeout(timer);
  }
}
