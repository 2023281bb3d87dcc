import {
  ACCOUNT_SLOW_WEBHOOK_SLOTS,
  ENDPOINT_PACE_KEPT_MS,
  SLOW_ENDPOINT_WEBHOOK_SLOTS,
  SLOW_WEBHOOK_TRY_MS,
} from '../domain/webhook.js';

/**
 * The weight of an answer's time in its endpoint's running mean: its last twenty or so answers count,
 * and a few timeouts (15 s) among answers of 150 ms leave it fast; four in a row make it slow.
 */
const WEIGHT = 0.1;
/** Endpoints remembered at once; the least lately tried is forgotten first, and starts again unproven. */
const REMEMBERED = 10_000;

/**
 * `unproven`: no try of it has been answered (or timed out) on this worker yet. `stale`: it answered
 * fast, but not for ENDPOINT_PACE_KEPT_MS: its tries take fast endpoints' slots, two at a time, and
 * its next answer stands for its pace alone (as a slow one's does after as long; it stays slow meanwhile).
 */
export type Pace = 'unproven' | 'fast' | 'slow' | 'stale';

/** The cap a try meets: its account's slots, those of its endpoints not known to answer fast, or its endpoint's own. */
export type Full = 'account' | 'account’s slow endpoints' | 'slow endpoint';

/**
 * Whether tries of an endpoint at this pace take the slots fast endpoints may take (not the few its
 * account's other endpoints share): fast, or fast once and not heard from lately (stale), whose dead
 * neighbours in those few slots must not hold it up.
 */
export function takesFastSlots(pace: Pace): boolean {
  return pace === 'fast' || pace === 'stale';
}

/**
 * The cap a try of an endpoint at `pace` meets, if any: every pace is held to its account's slots;
 * a fast endpoint to nothing more; a stale one to SLOW_ENDPOINT_WEBHOOK_SLOTS of its own under way;
 * the others to those, and to the account's slots for endpoints not known to answer fast.
 */
export function slotRefusal(
  pace: Pace,
  taken: { accountFull: boolean; slowSlotsFull: boolean; endpointUnderWay: number },
): Full | null {
  if (taken.accountFull) return 'account';
  if (pace === 'fast') return null;
  if (!takesFastSlots(pace) && taken.slowSlotsFull) return 'account’s slow endpoints';
  return taken.endpointUnderWay >= SLOW_ENDPOINT_WEBHOOK_SLOTS ? 'slow endpoint' : null;
}

interface EndpointTries {
  /** The running mean of its answers' times, once one has come. */
  meanMs?: number;
  /** When its last answer (or timeout) was timed: a mean older than ENDPOINT_PACE_KEPT_MS is stale. */
  answeredAt?: number;
  /** When each of its tries under way started. */
  startedAt: number[];
}

/** One try under way: `answered` with the time its POST took (none if nothing was sent), then `ended`. */
export interface TryUnderWay {
  answered(tookMs: number): void;
  ended(): void;
}

/**
 * How fast each endpoint has answered this worker's tries lately, and what it and its account have
 * under way: the slots webhook tries take are shared by how long their endpoints hold them, not by
 * a fixed count (ARCHITECTURE.md, "Webhooks").
 *
 * Tries stuck for SLOW_WEBHOOK_TRY_MS make a pace slow at once, before they end, when they are as many
 * as a slow endpoint (or a slow account) may have at all and at least half of what it has under way:
 * an endpoint that answered fast and now hangs, or an account's many endpoints that all lead to one
 * receiver gone quiet, do not hold every slot for a whole timeout after timeout; a busy endpoint with
 * two slow answers among eight is still fast.
 */
export class EndpointPace {
  private readonly endpoints = new Map<string, EndpointTries>();
  /**
   * When each try under way of each account, in a slot only fast endpoints may take, started. Tries in
   * the slots for endpoints not known to answer fast have their own cap: stuck, they must not make
   * the account's fast endpoints slow too.
   */
  private readonly accounts = new Map<string, number[]>();

  constructor(
    private readonly slowMs = SLOW_WEBHOOK_TRY_MS,
    private readonly clock = () => performance.now(),
    private readonly keptMs = ENDPOINT_PACE_KEPT_MS,
  ) {}

  paceOf(endpointId: string, accountId: string): Pace {
    const tries = this.endpoints.get(endpointId);
    if (this.stuck(this.accounts.get(accountId), ACCOUNT_SLOW_WEBHOOK_SLOTS)) return 'slow';
    if (!tries) return 'unproven';
    if (this.stuck(tries.startedAt, SLOW_ENDPOINT_WEBHOOK_SLOTS)) return 'slow';
    if (tries.meanMs === undefined) return 'unproven';
    if (tries.meanMs >= this.slowMs) return 'slow';
    return this.stale(tries) ? 'stale' : 'fast';
  }

  underWay(endpointId: string): number {
    return this.endpoints.get(endpointId)?.startedAt.length ?? 0;
  }

  /** `fast`: the try takes a slot only fast endpoints may take (`takesFastSlots` of its endpoint's pace). */
  start(endpointId: string, accountId: string, fast: boolean): TryUnderWay {
    const tries = this.remembered(endpointId);
    const ofAccount = fast ? (this.accounts.get(accountId) ?? []) : [];
    if (fast) this.accounts.set(accountId, ofAccount);
    const startedAt = this.clock();
    tries.startedAt.push(startedAt);
    if (fast) ofAccount.push(startedAt);
    let ended = false;
    return {
      answered: (tookMs) => {
        // Not heard from lately: this answer is its pace. A fast mean kept would outweigh a first timeout now.
        tries.meanMs =
          tries.meanMs === undefined || this.stale(tries) ? tookMs : tries.meanMs + WEIGHT * (tookMs - tries.meanMs);
        tries.answeredAt = this.clock();
      },
      ended: () => {
        if (ended) return;
        ended = true;
        tries.startedAt.splice(tries.startedAt.indexOf(startedAt), 1);
        if (!fast) return;
        ofAccount.splice(ofAccount.indexOf(startedAt), 1);
        if (ofAccount.length === 0) this.accounts.delete(accountId);
      },
    };
  }

  /** Whether its last answer is older than keptMs: what it was then says little of what it is now. */
  private stale(tries: EndpointTries): boolean {
    return tries.answeredAt !== undefined && this.clock() - tries.answeredAt > this.keptMs;
  }

  /** Whether `limit` or more of these tries under way have run slowMs, and at least half of them. */
  private stuck(startedAt: number[] | undefined, limit: number): boolean {
    if (!startedAt || startedAt.length < limit) return false;
    const now = this.clock();
    const stuck = startedAt.filter((at) => now - at >= this.slowMs).length;
    return stuck >= limit && stuck * 2 >= startedAt.length;
  }

  /** Its record, now the most lately tried; the least lately tried with nothing under way forgotten past REMEMBERED. */
  private remembered(endpointId: string): EndpointTries {
    const tries = this.endpoints.get(endpointId) ?? { startedAt: [] };
    this.endpoints.delete(endpointId);
    this.endpoints.set(endpointId, tries);
    if (this.endpoints.size > REMEMBERED) {
      for (const [id, oldest] of this.endpoints) {
        if (oldest.startedAt.length === 0) {
          this.endpoints.delete(id);
          break;
        }
      }
    }
    return tries;
  }
}
