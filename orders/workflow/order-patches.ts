// The order workflow's patches (ARCHITECTURE.md, "Temporal design"), in one place. A patch first
// used records a marker and, sdk-core's doing, upserts TemporalChangeVersion: a visibility write.
// Used where its behaviour is, most patches were first used in the middle of a due burst, in the
// task that sends a payment or takes its answer. An order started since ALL_ABOVE_AT_START takes
// one marker at its start instead, which stands for every patch listed before it.
import { patched } from '@temporalio/workflow';

export const OrderPatch = {
  /** Since this patch LATE arrears with nothing planned expire; older histories replay with them waiting. */
  ARREARS_EXPIRY: 'arrears-expire',
  /**
   * Since this patch a declined customer payment leaves the instruction for the customer to pay
   * another way; histories from before it replay with the decline failing it (or dunning it).
   */
  CUSTOMER_RETRY: 'customer-decline-leaves-instruction-payable',
  /**
   * Since this patch a reversal that comes before its payment's settlement is applied (both signalled
   * while the loop was away, a worker down) waits for it; before, it was dropped.
   */
  REVERSAL_BEFORE_SETTLED: 'reversal-waits-for-its-settlement',
  /** Since this patch calls to tenant-hosted providers run on a task queue of their own; older histories replay as they ran. */
  TENANT_HOSTED_QUEUE: 'tenant-hosted-provider-queue',
  /** Since this patch the memo counts instructions by status; older histories upserted their memo only when the totals changed. */
  MEMO_COUNTS: 'memo-counts-instructions',
  /** Since this patch a projection waits for the payment calls under way; older histories projected at once. */
  PROJECT_WITH_ANSWERS: 'project-with-call-answers',
  /**
   * Since this patch an ended order stays open through its reversal windows (ARCHITECTURE.md,
   * "After settlement"); histories from before it end with their last instruction.
   */
  STAYS_OPEN: 'order-stays-open-after-settlement',
} as const;
export type OrderPatchId = (typeof OrderPatch)[keyof typeof OrderPatch];

/**
 * Taken at the start of every run: every patch above is in, and (new with it) the operators' view
 * waits with the read model for the payment answers. A run from before it uses each patch where
 * its behaviour is, as it did. Add a patch after it as ever: `has` asks for it where it is used.
 */
const ALL_ABOVE_AT_START = 'order-patches-at-start';

export class OrderPatches {
  /** This run began on code that has every patch listed above. */
  readonly allAtStart: boolean;

  constructor() {
    this.allAtStart = patched(ALL_ABOVE_AT_START);
  }

  has(id: OrderPatchId): boolean {
    return this.allAtStart || patched(id);
  }
}
