import { SLOW_ENDPOINT_WEBHOOK_SLOTS, SLOW_WEBHOOK_TRY_MS } from '../domain/webhook.js';

/**
 * The weight of a try's time in its endpoint's running mean: its last twenty or so tries count, and
 * one timeout (15 s) among tries of 150 ms leaves it fast; two in a row make it slow.
 */
const WEIGHT = 0.1;
/** Endpoints remembered at once; the least lately tried is forgotten first, and starts again unproven. */
const REMEMBERED = 10_000;

/** `unproven`: no try of it has ended on this worker yet. */
export type Pace = 'unproven' | 'fast' | 'slow';

interface EndpointTries {
  /** The running mean of its tries' times, once one has ended. */
  meanMs?: number;
  /** When each of its tries under way started. */
  startedAt: number[];
}

/**
 * How fast each endpoint has answered this worker's tries lately, and how many it has under way: the
 * slots a webhook try takes are shared by how long their endpoints hold them, not by a fixed count.
 * An endpoint with as many tries under way for SLOW_WEBHOOK_TRY_MS as a slow one may have at all is
 * slow at once, before they end: one that answered fast and now hangs does not hold every slot of its
 * account for a whole timeout.
 */
export class EndpointPace {
  private readonly endpoints = new Map<string, EndpointTries>();

  constructor(
    private readonly slowMs = SLOW_WEBHOOK_TRY_MS,
    private readonly clock = () => performance.now(),
  ) {}

  paceOf(endpointId: string): Pace {
    const tries = this.endpoints.get(endpointId);
    if (!tries) return 'unproven';
    const now = this.clock();
    const stuck = tries.startedAt.filter((at) => now - at >= this.slowMs).length;
    if (stuck >= SLOW_ENDPOINT_WEBHOOK_SLOTS) return 'slow';
    if (tries.meanMs === undefined) return 'unproven';
    return tries.meanMs >= this.slowMs ? 'slow' : 'fast';
  }

  underWay(endpointId: string): number {
    return this.endpoints.get(endpointId)?.startedAt.length ?? 0;
  }

  /** A try of the endpoint starts; what it returns is called when it ends, however it ends. */
  start(endpointId: string): () => void {
    const tries = this.remembered(endpointId);
    const startedAt = this.clock();
    tries.startedAt.push(startedAt);
    return () => {
      tries.startedAt.splice(tries.startedAt.indexOf(startedAt), 1);
      const took = this.clock() - startedAt;
      tries.meanMs = tries.meanMs === undefined ? took : tries.meanMs + WEIGHT * (took - tries.meanMs);
    };
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
