import { readdirSync, readFileSync } from 'node:fs';

/** The p-th percentile of ascending `sorted` (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The middle value (of an even count, the lower of the two in the middle). */
export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
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

/** Clock ticks a second in /proc (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU time a process has used so far (user and system), in ms, from /proc. */
export function processCpuMs(pid: number): number {
  // The fields after the command name, which is in parentheses and may hold spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** CPU time the whole machine has spent busy so far (every core, anything but idle and waiting for I/O), in ms. */
export function machineBusyMs(): number {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks;
  return ((user + nice + system + irq + softirq + steal) * 1000) / TICKS_PER_SECOND;
}

/** Every user process's CPU time so far, by pid, with its name. */
export type ProcessCpu = Map<number, { name: string; ms: number }>;

/** The CPU of every user process, each named by `named` (by pid), else "benchmark" for this one, else its `comm`. */
export function cpuOfProcesses(named: ReadonlyMap<number, string> = new Map()): ProcessCpu {
  const all: ProcessCpu = new Map();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      // Kernel threads have no command line: their names change with their work and they are no process of ours.
      if (readFileSync(`/proc/${pid}/cmdline`).length === 0) continue;
      const name =
        named.get(pid) ?? (pid === process.pid ? 'benchmark' : readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
      all.set(pid, { name, ms: processCpuMs(pid) });
    } catch {
      // It exited while being read.
    }
  }
  return all;
}

/**
 * The CPU each kind of process spent between two readings, in ms per `unit` (a process started in
 * between counts from nothing; one that ended is left out), largest first, with their sum.
 */
export function cpuSpent(
  before: ProcessCpu,
  after: ProcessCpu,
  unit: number,
): { total: number; byName: [string, number][] } {
  const byName = new Map<string, number>();
  for (const [pid, { name, ms }] of after) {
    const spent = (ms - (before.get(pid)?.ms ?? 0)) / unit;
    if (spent > 0) byName.set(name, (byName.get(name) ?? 0) + spent);
  }
  const sorted = [...byName].sort((a, b) => b[1] - a[1]);
  return { total: sorted.reduce((sum, [, ms]) => sum + ms, 0), byName: sorted };
}

/** `cpuSpent` in a line: "12.3 ms (server 5.1, postgres 4.0, …)", names under 0.1 ms left out. */
export function describeCpuSpent({ total, byName }: ReturnType<typeof cpuSpent>): string {
  const parts = byName.filter(([, ms]) => ms >= 0.1).map(([name, ms]) => `${name} ${ms.toFixed(1)}`);
  return `${total.toFixed(1)} ms (${parts.join(', ')})`;
}
