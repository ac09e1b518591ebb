import { Migration0001InitialSchema } from "./0001-initial-schema.js";
import { Migration0002Leases } from "./0002-leases.js";
import { Migration0003QueueDefaults } from "./0003-queue-defaults.js";
import { Migration0004EventCommitOrder } from "./0004-event-commit-order.js";
import { Migration0005Retention } from "./0005-retention.js";
import { Migration0006Webhooks } from "./0006-webhooks.js";
import { Migration0008IdempotencyAndPause } from "./0008-idempotency-and-pause.js";

/**
 * Every migration, in order. Migrations are numbered, forward-only and never edited once
 * released: a change to the schema is a new file appended here.
 */
export const migrations = [
  { name: "0001-initial-schema", class: Migration0001InitialSchema },
  { name: "0002-leases", class: Migration0002Leases },
  { name: "0003-queue-defaults", class: Migration0003QueueDefaults },
  { name: "0004-event-commit-order", class: Migration0004EventCommitOrder },
  { name: "0005-retention", class: Migration0005Retention },
  { name: "0006-webhooks", class: Migration0006Webhooks },
  { name: "0008-idempotency-and-pause", class: Migration0008IdempotencyAndPause },
];
