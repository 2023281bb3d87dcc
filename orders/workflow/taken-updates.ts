// Temporal takes an update once per id, but only within the run that took it: a run started by
// continue-as-new knows none of its predecessor's. The ids of the updates an order took lately go on
// with its state, so that a retry arriving after a continue-as-new (its first answer lost on the way)
// is answered as taken, neither refused by a validator that sees the change made (a cancelled
// instruction is not cancellable) nor made twice.
import { currentUpdateInfo } from '@temporalio/workflow';

/** How many ids go on: the retries of the last minutes, a few kilobytes of the continued input. */
export const TAKEN_UPDATES_KEPT = 100;

export class TakenUpdates {
  constructor(private readonly state: { takenUpdates?: string[] }) {}

  /** The update being handled was taken before, by an earlier run of this order. */
  isRepeat(): boolean {
    const id = currentUpdateInfo()?.id;
    return id !== undefined && (this.state.takenUpdates?.includes(id) ?? false);
  }

  /** The update being handled is taken: its id goes on with the order, the oldest dropped past the limit. */
  remember(): void {
    const id = currentUpdateInfo()?.id;
    if (id === undefined) return;
    const taken = (this.state.takenUpdates ??= []);
    taken.push(id);
    if (taken.length > TAKEN_UPDATES_KEPT) taken.splice(0, taken.length - TAKEN_UPDATES_KEPT);
  }
}
