/**
 * Slots of something a process does a few of at a time (exports, webhook tries), with at most so
 * many per tenant: one tenant whose work is slow cannot hold every slot and turn every other tenant away.
 */
export class TenantSlots {
  private readonly held = new Map<string, number>();

  constructor(
    private readonly atOnce: number,
    private readonly perTenant: number,
  ) {}

  /** Why the tenant cannot take one now, if it cannot: its own slots, or everyone's. */
  refusal(tenantId: string): 'tenant' | 'process' | undefined {
    if ((this.held.get(tenantId) ?? 0) >= this.perTenant) return 'tenant';
    let running = 0;
    for (const count of this.held.values()) running += count;
    return running >= this.atOnce ? 'process' : undefined;
  }

  take(tenantId: string): void {
    this.held.set(tenantId, (this.held.get(tenantId) ?? 0) + 1);
  }

  release(tenantId: string): void {
    const left = (this.held.get(tenantId) ?? 1) - 1;
    if (left > 0) this.held.set(tenantId, left);
    else this.held.delete(tenantId);
  }
}
