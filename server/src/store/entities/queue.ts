import { defineEntity, p } from "@mikro-orm/core";

/** A queue (table `queue`, migration 0001); created on first use by Enqueue. */
export const QueueEntity = defineEntity({
  name: "Queue",
  tableName: "queue",
  properties: {
    name: p.text().primary(),
    createdAt: p.datetime().columnType("timestamptz"),
  },
});
