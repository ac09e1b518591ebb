import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { QueueSchema, type Queue } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import type { QueueRow } from "../store/sql/queue-settings.js";
import { durationFromMillis } from "./proto-time.js";

/** The wire form of a queue; unset defaults stay unset (the server's apply). */
export function queueMessage(row: QueueRow): Queue {
  const duration = (ms: number | null) => (ms === null ? undefined : durationFromMillis(ms));
  return create(QueueSchema, {
    name: row.name,
    defaults: {
      retryPolicy: {
        maxAttempts: row.maxAttempts ?? 0,
        initialBackoff: duration(row.backoffInitialMs),
        maxBackoff: duration(row.backoffMaxMs),
        backoffMultiplier: row.backoffMultiplier ?? 0,
        jitter: row.backoffJitter ?? undefined,
      },
      leaseTimeout: duration(row.leaseTimeoutMs),
      executionTimeout: duration(row.executionTimeoutMs),
      retention: duration(row.retentionMs),
      idempotencyWindow: duration(row.idempotencyWindowMs),
      concurrencyKey: row.concurrencyKey ?? "",
      priority: row.priority,
    },
    createdAt: timestampFromDate(row.createdAt),
    updatedAt: timestampFromDate(row.updatedAt),
    paused: row.pausedAt !== null,
    pausedAt: row.pausedAt === null ? undefined : timestampFromDate(row.pausedAt),
  });
}
