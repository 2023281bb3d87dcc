/**
 * `work`'s outcome, or a rejection with `timedOut()` once `ms` have passed without one. The timer is
 * cleared either way; `work` itself goes on (the caller stops waiting for it, nothing more).
 */
export function withinTime<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
