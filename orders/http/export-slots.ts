/**
 * Who may start an export now, in one API process: each export holds a database connection while
 * its client reads, so there are a few at a time, and at most one per tenant, so that a tenant
 * reading its files slowly cannot hold every slot and turn every other tenant's export away.
 */
export class ExportSlots {
  private readonly held = new Map<string, number>();

  constructor(
    private readonly atOnce: number,
    private readonly perTenant: number,
  ) {}

  /** Why the tenant cannot start one now, if it cannot: its own exports, or everyone's. */
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
