import { defineEntity, p, type InferEntity } from "@mikro-orm/core";

/**
 * One row of the append-only event log (table `job_event`, migration 0001). Events are
 * inserted by the same statement that changes the job; the ORM only reads them.
 */
export const JobEventEntity = defineEntity({
  name: "JobEvent",
  tableName: "job_event",
  properties: {
    id: p.bigint("string").primary(),
    txId: p.text().columnType("xid8"),
    jobId: p.uuid(),
    queue: p.text(),
    type: p.text(),
    attempt: p.integer(),
    data: p.json<Record<string, unknown>>(),
    at: p.datetime().columnType("timestamptz"),
  },
});

/** An event as the ORM loads it. */
export type JobEventRecord = InferEntity<typeof JobEventEntity>;
