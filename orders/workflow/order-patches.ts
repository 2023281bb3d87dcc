// The order workflow's patches (ARCHITECTURE.md, "Temporal design"). A patch first used records a
// marker and, sdk-core's doing, upserts TemporalChangeVersion: a visibility write. Asked where its
// behaviour is, two of them (the read model waiting for payment answers, the order staying open)
// were first used in the tasks that send a due payment and take its answer, in the middle of a due
// burst. An order started since ALL_BELOW_AT_START records one marker (and one upsert) at its start
// instead, which stands for every patch of PATCHES_BEFORE_START. An order started since
// PROJECTS_LOCALLY_AT_START records that marker instead, which stands for ALL_BELOW_AT_START too, and
// one started since BIG_ON_QUEUE_AT_START records that one, which stands for both.
import { patched } from '@temporalio/workflow';

/** The patches the start marker stands for. Closed: a later patch is not added here (see OrderPatches). */
export const PATCHES_BEFORE_START = {
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
export type PatchBeforeStart = (typeof PATCHES_BEFORE_START)[keyof typeof PATCHES_BEFORE_START];

/**
 * Since this patch, taken at the start of every run, every patch of PATCHES_BEFORE_START is in, and
 * the operators' view waits with the read model for payment answers. A run from before it asks each
 * patch where its behaviour is, as it did.
 */
const ALL_BELOW_AT_START = 'order-patches-at-start';

/**
 * Since this patch, taken at the start of every run in place of ALL_BELOW_AT_START, the read model is
 * written by a local activity (ARCHITECTURE.md, "Temporal design"). A run from before it projects
 * with an activity on the task queue, as it did.
 */
const PROJECTS_LOCALLY_AT_START = 'order-projects-locally';

/**
 * Since this patch, taken at the start of every run in place of PROJECTS_LOCALLY_AT_START, a
 * projection of many instructions is written by the activity on the task queue, not locally
 * (orders/workflow/projector.ts). A run from before it writes every projection locally, as it did.
 */
const BIG_ON_QUEUE_AT_START = 'order-projects-big-on-queue';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a
 * settlement a tenant admin resolves counts its amount as collected (its totals, what can be
 * refunded); histories from before it replay with the amount not counted.
 */
export const RESOLUTION_SETTLES_AMOUNT = 'resolution-counts-settled-amount';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a refund
 * keeps the app that took the payment it refunds, and is called, asked about and called back through
 * it; histories from before it replay with their refunds going through the instruction's app.
 */
export const REFUND_KEEPS_ITS_APP = 'refund-keeps-its-app';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a refund
 * asked for before REFUND_KEEPS_ITS_APP, still under way when its instruction is paid or amended to
 * go through another app, keeps the app it has gone through; histories from before it replay with
 * that refund following the instruction. A patch of its own: REFUND_KEEPS_ITS_APP's marker may be in
 * a history already, recorded by code that let such a refund follow.
 */
export const REFUND_FROM_BEFORE_KEEPS_ITS_APP = 'refund-from-before-keeps-its-app';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch an ended
 * order is active again as soon as one of its instructions moves (a return, a retry). Before, it was
 * so only once the run had stopped waiting for a refund under way, and meanwhile it refused to be
 * paid; histories from before it replay with the order reopened by its run.
 */
export const REOPENS_WHEN_MOVED = 'order-reopens-when-an-instruction-moves';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a debit
 * refused by us for want of an active mandate is tried again on MANDATE_RECHECK_DELAYS_MS. Before, it
 * waited for the mandate's confirmation to be signalled, and one that came while the call was under
 * way, or before the read model showed the instrument, was missed: it waited until its arrears
 * expired. Histories from before it replay so.
 */
export const MANDATE_RECHECKED = 'mandate-refusal-rechecked';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a payment
 * refunded in part or whole before it was taken back is not collected again: what is owed is no
 * longer the instruction's amount. Before, it was collected again in full under a new key, taking
 * again what had been given back; histories from before it replay so.
 */
export const RETURN_AFTER_REFUND = 'return-after-refund-not-recollected';

/**
 * Made after the start marker, so asked with `patched()` where it is used, and only for a return
 * verified only by a callback secret replaced since (`Reversal.underReplacedSecret`): since this
 * patch such a return is not collected again. A worker of before it collected it again; its
 * histories replay so. (The API of c4eaf4d signalled marked returns, which such a worker took; since,
 * the API hands them on by `replacedSecretReturnUpdate`, which such a worker refuses.)
 */
export const RETURN_UNDER_REPLACED_SECRET = 'return-under-replaced-secret-not-recollected';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a
 * debit's checks for its mandate start afresh when its instrument changes, when it is retried, or
 * when its mandate is confirmed (f51a08a). Before, the count carried over; histories from before it
 * replay so, or a debit whose checks were spent would now set a timer their history does not have.
 */
export const MANDATE_CHECKS_AFRESH = 'mandate-checks-afresh';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a check of
 * a debit's mandate that finds it still not active (nothing sent) leaves the instruction's arrears
 * counted from the debit's first refusal for it. Before, each check went LATE again and restamped
 * `lateAt`, so arrears whose checks ran for 31 h expired up to 31 h later; histories from before it
 * replay so.
 */
export const MANDATE_CHECK_KEEPS_ARREARS_START = 'mandate-check-keeps-arrears-start';

export class OrderPatches {
  /** This run began on code that writes a projection of many instructions on the task queue. */
  readonly queuesBigProjections: boolean;
  /** This run began on code that projects the read model with a local activity. */
  readonly projectsLocally: boolean;
  /** This run began on code that has every patch of PATCHES_BEFORE_START. */
  readonly allAtStart: boolean;

  constructor() {
    this.queuesBigProjections = patched(BIG_ON_QUEUE_AT_START);
    this.projectsLocally = this.queuesBigProjections || patched(PROJECTS_LOCALLY_AT_START);
    this.allAtStart = this.projectsLocally || patched(ALL_BELOW_AT_START);
  }

  /**
   * Only for the patches the start marker stands for: a patch made after it must be asked with
   * `patched()` where it is used, since orders started with the start marker did not have it.
   */
  has(id: PatchBeforeStart): boolean {
    return this.allAtStart || patched(id);
  }
}

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a
 * callback's result that came while the provider was asked about the same payment (or refund), and
 * the answer stated other money than asked, ends it: the callback's money was checked at the door.
 * Before, the answer made the outcome unknown and dropped the callback's result; histories from
 * before it replay so.
 */
export const CALLBACK_BEATS_MISMATCHED_ANSWER = 'callback-beats-mismatched-answer';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a payment
 * (or refund) whose provider answered other money than asked keeps the reference the provider stated,
 * and a callback under that reference, once the outcome is unknown, has the provider asked again
 * under the key at once instead of at the hourly retry. Before, such a callback was answered and
 * dropped; histories from before it replay so.
 */
export const UNKNOWN_ASKED_ON_CALLBACK = 'unknown-outcome-asked-on-callback';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a
 * provider's result for no payment the order knows yet, while one of its payment calls is under way,
 * is kept and offered again once a call's answer is applied. A signal is handled before the activity
 * result that came in the same workflow task (sdk-core orders an activation's jobs so), so a
 * chargeback sent as soon as the payment settled, reaching a busy worker together with the payment's
 * answer, found the instruction still PROCESSING and was dropped. Histories from before it replay so.
 */
export const EARLY_RESULT_WAITS_FOR_ITS_CALL = 'early-result-waits-for-its-call';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch a
 * refund's result for no refund the order knows yet, or for a refund being called again (its outcome
 * unknown, its reference kept), while one of its refund calls is under way, is kept and offered again
 * once a call's answer is applied, as EARLY_RESULT_WAITS_FOR_ITS_CALL does for payments. A worker
 * killed after its call was answered PENDING, in the task applying the answer, has projected the
 * refund's reference; the callback, taken by the API on the strength of that row, reaches the next
 * worker in one activation with the answer and is handled first, while the refund is still being
 * called, and was dropped: the refund waited for its status poll, five minutes on.
 * Histories from before it replay so.
 */
export const REFUND_EARLY_RESULT_WAITS_FOR_ITS_CALL = 'refund-early-result-waits-for-its-call';

/**
 * Made after the start marker, so asked with `patched()` where it is used: since this patch, when a
 * provider's answer and its callback that came while it was asked disagree on whether money moved,
 * money moved wins. A callback saying the payment settled (or the refund was made) ends it though
 * the answer says it was declined (or failed); a callback saying it was declined (or failed), against
 * an answer stating other money than asked, leaves the outcome unknown, its key kept. Before, the
 * answer's decline (failure) or the callback's ended it, freeing the amount for a new key: money
 * could move twice. Histories from before it replay so.
 */
export const MONEY_MOVED_BEATS_NOT_MOVED = 'money-moved-beats-not-moved';

/**
 * Made after the start marker, so asked with `patched()` where it is used, when a call comes back put
 * off (PROVIDER_CALL_PUT_OFF): since this patch the call is made again after a wait, at most
 * MAX_PUT_OFFS times. A worker of the code before, meeting a put-off during a deploy, ended the call
 * unanswered (its key kept, asked about an hour later); a history it wrote replays so.
 */
export const CALL_AGAIN_WHEN_PUT_OFF = 'call-again-when-put-off';

/**
 * Made after the start marker, so asked with `patched()` where it is used, and only when it matters:
 * since this patch, a return or chargeback that came while the provider was asked about a pending
 * payment (its callback RETURNED, or a RETURNED kept with its settlement's callback), when the answer
 * says only that it settled, ends it by the callback: settled, then taken back. Before, the answer
 * settled it and the return was dropped, its callback marked delivered: the money the bank took back
 * counted as collected, and refundable again. Histories from before it replay so.
 */
export const RETURN_WHILE_ASKED_KEPT = 'return-while-asked-kept';

/**
 * Made after the start marker, so asked with `patched()` where it is used, and only when it matters:
 * since this patch, a return or chargeback that comes for a payment of unknown outcome (LATE, to be
 * asked again under its key, or being asked now) is kept until its outcome is known (the provider's
 * answer under the key, or a tenant admin's resolution), then taken: after a settlement, as a return
 * of the settled payment. Before, the callback only prompted the question (or, while it was being
 * asked, was dropped), its callback marked delivered; an answer saying only that it settled left the
 * money the bank took back as collected. Histories from before it replay so.
 */
export const RETURN_OF_UNKNOWN_KEPT = 'return-of-unknown-kept';
