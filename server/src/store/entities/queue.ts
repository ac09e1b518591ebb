import { defineEntity, p } from "@mikro-orm/core";

/**
 * A queue (table `queue`, migrations 0001, 0003, 0005, 0008, 0013 and 0015), named
 * uniquely within its namespace; created on first use by Enqueue. Its defaults are null
 * where the server's apply.
 */
export const QueueEntity = defineEntity({
  name: "Queue",
  tableName: "queue",
  properties: {
    namespace: p.text().primary(),
    name: p.text().primary(),
    createdAt: p.datetime().columnType("timestamptz"),
    updatedAt: p.datetime().columnType("timestamptz"),
    maxAttempts: p.integer().nullable(),
    backoffInitialMs: p.bigint("number").nullable(),
    backoffMaxMs: p.bigint("number").nullable(),
    backoffMultiplier: p.double().nullable(),
    backoffJitter: p.double().nullable(),
    leaseTimeoutMs: p.integer().nullable(),
    executionTimeoutMs: p.integer().nullable(),
    retentionMs: p.bigint("number").nullable(),
    idempotencyWindowMs: p.bigint("number").nullable(),
    pausedAt: p.datetime().columnType("timestamptz").nullable(),
  },
});
