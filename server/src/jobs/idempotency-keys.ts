import {
  idempotencyKeyInsertMany,
  idempotencyKeyLiveHolders,
  idempotencyKeyLockMany,
  idempotencyKeyMoveMany,
  type KeyHold,
} from "../store/sql/idempotency-key.js";
import type { JobOwner, NewJob } from "../store/sql/job-insert-many.js";
import type { Queryable } from "../store/transaction.js";

/** What {@link idempotencyKeysDecide} decided for one job. */
export interface KeyDecision {
  /** The job that holds the key: the job itself when it is to be created. */
  holderId: string;
  /** True when the job is not to be created: another job holds its key. */
  deduplicated: boolean;
}

/**
 * Rounds of claim-then-lock before giving up. A second round is needed only when retention
 * deleted a holder between this transaction's claim and its lock; more are pathological.
 */
const maxRounds = 5;

/**
 * Decides, inside the caller's transaction, which of `jobs` (each with an idempotency key)
 * are created and which are deduplicated, and records the new holders; the caller then
 * inserts the jobs to create in the same transaction. Per (queue, key), the first job of
 * `jobs` is the candidate, and later ones follow it. A candidate is created when its key is
 * free, or when its holder is gone or finished longer ago than its queue's window
 * (`defaultWindowMs` if the queue sets none); otherwise every job with that key is
 * deduplicated to the holder.
 *
 * How it stays exact under concurrency: the claim is an insert into the key table's primary
 * key, so concurrent claims of one key serialise on it and exactly one wins; the losers then
 * lock the winner's row (in a new statement, whose snapshot sees the winner's committed job)
 * and judge it. Claims are made in one sorted order and locks taken in key order, so
 * overlapping requests wait for each other in one direction.
 */
export async function idempotencyKeysDecide(tx: Queryable, entries: readonly OwnedKeyedJob[], defaultWindowMs: number): Promise<KeyDecision[]> {
  const candidates = new Map<string, OwnedKeyedJob>();
  for (const entry of entries) {
    const id = holdIdOf(holdOf(entry));
    if (!candidates.has(id)) candidates.set(id, entry);
  }
  const holders = new Map<string, string>();
  let open = [...candidates.keys()].sort().map((id) => candidates.get(id)!);
  for (let round = 0; open.length > 0; round++) {
    if (round === maxRounds) throw new Error(`idempotency keys changed hands ${maxRounds} times during one enqueue`);
    const claimed = await idempotencyKeyInsertMany(tx, open.map(holdOf));
    for (const hold of claimed) holders.set(holdIdOf(hold), hold.jobId);
    const taken = open.filter((entry) => !holders.has(holdIdOf(holdOf(entry))));
    if (taken.length === 0) break;
    const locked = await idempotencyKeyLockMany(tx, taken.map(holdOf));
    const live = await idempotencyKeyLiveHolders(tx, locked.map((hold) => hold.jobId), defaultWindowMs);
    const moves: KeyHold[] = [];
    for (const hold of locked) {
      const id = holdIdOf(hold);
      if (live.has(hold.jobId)) {
        holders.set(id, hold.jobId);
      } else {
        const candidate = candidates.get(id)!;
        moves.push({ ...hold, jobId: candidate.job.id });
        holders.set(id, candidate.job.id);
      }
    }
    if (moves.length > 0) await idempotencyKeyMoveMany(tx, moves);
    // Keys whose row vanished between the claim and the lock: claim them again.
    open = taken.filter((entry) => !holders.has(holdIdOf(holdOf(entry))));
  }
  return entries.map((entry) => {
    const holderId = holders.get(holdIdOf(holdOf(entry)))!;
    return { holderId, deduplicated: holderId !== entry.job.id };
  });
}

/** A job with an idempotency key, and the principal enqueueing it (keys are scoped to it and its namespace). */
export interface OwnedKeyedJob {
  job: NewJob;
  owner: JobOwner;
}

function holdOf({ job, owner }: OwnedKeyedJob): KeyHold {
  return { namespace: owner.namespace, queue: job.queue, owner: owner.id, key: job.idempotencyKey!, jobId: job.id };
}

/** One string per (namespace, queue, owner, key); NUL never occurs in them (all are validated). */
function holdIdOf(hold: KeyHold): string {
  return `${hold.namespace}\u0000${hold.queue}\u0000${hold.owner}\u0000${hold.key}`;
}
