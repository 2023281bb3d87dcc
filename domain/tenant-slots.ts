/**
 * Slots of something a process does a few of at a time (exports, webhook tries), with at most so
 * many per owner (a tenant; or an account, whose tenants then share them): one whose work is slow
 * cannot hold every slot and turn every other away.
 */
export class TenantSlots {
  private readonly held = new Map<string, number>();

  constructor(
    private readonly atOnce: number,
    private readonly perOwner: number,
  ) {}

  /** Why `owner` cannot take one now, if it cannot: its own slots, or everyone's. */
  refusal(owner: string): 'tenant' | 'process' | undefined {
    if ((this.held.get(owner) ?? 0) >= this.perOwner) return 'tenant';
    let running = 0;
    for (const count of this.held.values()) running += count;
    return running >= this.atOnce ? 'process' : undefined;
  }

  take(owner: string): void {
    this.held.set(owner, (this.held.get(owner) ?? 0) + 1);
  }

  release(owner: string): void {
    const left = (this.held.get(owner) ?? 1) - 1;
    if (left > 0) this.held.set(owner, left);
    else this.held.delete(owner);
  }
}
