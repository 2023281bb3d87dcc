/** The p-th percentile of ascending `sorted` (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * Calls `call(0)` … `call(count - 1)` at a steady `perSecond`, each at its own time whether or not
 * the ones before have finished (an open loop, as real traffic arrives), and waits for them all.
 */
export async function steadily(
  count: number,
  perSecond: number,
  call: (index: number) => Promise<void>,
): Promise<void> {
  const started = performance.now();
  const calls: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = started + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    calls.push(call(i));
  }
  await Promise.all(calls);
}
