import { create } from "@bufbuild/protobuf";
import type { NamespaceOf } from "../auth/caller.js";
import type { QueueAddress } from "../dispatch/queue-address.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  ConcurrencyLimitSchema,
  type ConcurrencyLimit,
  type DeleteConcurrencyLimitRequest,
  type PauseConcurrencyKeyRequest,
  type SetConcurrencyLimitRequest,
} from "@jobwire/sdk/gen/jobwire/v1/concurrency_pb";
import type { Database } from "../store/orm.js";
import {
  concurrencyKeyPause,
  concurrencyLimitDelete,
  concurrencyLimitList,
  concurrencyLimitUpsert,
  type ConcurrencyLimitRow,
} from "../store/sql/concurrency.js";
import { withTransaction } from "../store/transaction.js";
import { invalidArgument } from "./connect-errors.js";
import { dateFromTimestamp, durationFromMillis, millisFromDuration } from "./proto-time.js";
import { checkName } from "./validate-job-spec.js";

/** Longest pause of a key. */
const pauseMaxMs = 7 * 86_400_000;

/** What the concurrency handlers need. */
export interface ConcurrencyHandlerDeps {
  db: Database;
  /** Capacity or limits changed: the admission loop looks again. */
  limitsChanged(): void;
  /** The namespace of a call's caller: limits are its own. */
  namespaceOf: NamespaceOf;
  /** Jobs of these queues were admitted by the change. */
  jobsReady(queues: Iterable<QueueAddress>): void;
}

/** The QueueService handlers of concurrency limits. */
export function concurrencyHandlers(deps: ConcurrencyHandlerDeps) {
  const { db } = deps;
  return {
    async setConcurrencyLimit(request: SetConcurrencyLimitRequest, context: HandlerContext) {
      const limit = request.limit;
      if (!limit) throw invalidArgument("limit", "is required");
      const key = checkLimitKey(limit.key, "limit.key");
      if (limit.perKey && !key.endsWith("*")) throw invalidArgument("limit.per_key", "applies only to a prefix (a key ending in *)");
      for (const [value, field] of [[limit.maxRunning, "limit.max_running"], [limit.maxWeight, "limit.max_weight"], [limit.rateCount, "limit.rate_count"]] as const) {
        if (!Number.isInteger(value) || value < 0) throw invalidArgument(field, "must be 0 (no bound) or more");
      }
      const rateIntervalMs = limit.rateInterval ? millisFromDuration(limit.rateInterval, "limit.rate_interval", 1, 86_400_000) : null;
      if ((limit.rateCount > 0) !== (rateIntervalMs !== null)) throw invalidArgument("limit.rate_interval", "must be set exactly when rate_count is");
      const row = await withTransaction(db.pool, (tx) =>
        concurrencyLimitUpsert(tx, deps.namespaceOf(context), {
          key,
          maxRunning: limit.maxRunning || null,
          maxWeight: limit.maxWeight || null,
          rateCount: limit.rateCount || null,
          rateIntervalMs,
          perKey: limit.perKey,
        }),
      );
      deps.limitsChanged();
      return { limit: limitMessage(row) };
    },

    async deleteConcurrencyLimit(request: DeleteConcurrencyLimitRequest, context: HandlerContext) {
      const key = checkLimitKey(request.key, "key");
      const queues = await withTransaction(db.pool, (tx) => concurrencyLimitDelete(tx, deps.namespaceOf(context), key));
      if (!queues) throw new ConnectError(`concurrency limit ${key} not found`, Code.NotFound);
      deps.jobsReady(queues);
      deps.limitsChanged();
      return {};
    },

    async listConcurrencyLimits(_request: unknown, context: HandlerContext) {
      return { limits: (await concurrencyLimitList(db.pool, deps.namespaceOf(context))).map(limitMessage) };
    },

    async pauseConcurrencyKey(request: PauseConcurrencyKeyRequest, context: HandlerContext) {
      const key = checkLimitKey(request.key, "key");
      if (!request.until) throw invalidArgument("until", "is required");
      const until = dateFromTimestamp(request.until, "until");
      if (until.getTime() - Date.now() > pauseMaxMs) throw invalidArgument("until", "must be at most 7 days ahead");
      const row = await withTransaction(db.pool, (tx) => concurrencyKeyPause(tx, deps.namespaceOf(context), key, until));
      deps.limitsChanged();
      return { limit: limitMessage(row) };
    },
  };
}

/** A concurrency key, or a prefix of keys written with a trailing `*`. */
function checkLimitKey(key: string, field: string): string {
  if (key === "*") return key;
  if (key.endsWith("*")) {
    checkName(key.slice(0, -1), field);
    return key;
  }
  return checkName(key, field);
}

function limitMessage(row: ConcurrencyLimitRow): ConcurrencyLimit {
  return create(ConcurrencyLimitSchema, {
    key: row.key,
    perKey: row.perKey,
    maxRunning: row.maxRunning ?? 0,
    maxWeight: row.maxWeight ?? 0,
    rateCount: row.rateCount ?? 0,
    rateInterval: row.rateIntervalMs === null ? undefined : durationFromMillis(row.rateIntervalMs),
    pausedUntil: row.pausedUntil ? timestampFromDate(row.pausedUntil) : undefined,
    updatedAt: timestampFromDate(row.updatedAt),
  });
}
