import { Migration0001InitialSchema } from "./0001-initial-schema.js";
import { Migration0002Leases } from "./0002-leases.js";
import { Migration0003QueueDefaults } from "./0003-queue-defaults.js";
import { Migration0004EventCommitOrder } from "./0004-event-commit-order.js";
import { Migration0005Retention } from "./0005-retention.js";
import { Migration0006Webhooks } from "./0006-webhooks.js";
import { Migration0007JobWebhooks } from "./0007-job-webhooks.js";
import { Migration0008IdempotencyAndPause } from "./0008-idempotency-and-pause.js";
import { Migration0009CronSchedules } from "./0009-cron-schedules.js";
import { Migration0010DependenciesAndBatches } from "./0010-dependencies-and-batches.js";
import { Migration0011ApiKeys } from "./0011-api-keys.js";
import { Migration0012ConcurrencyLimits } from "./0012-concurrency-limits.js";
import { Migration0013QueuePriorityAndKey } from "./0013-queue-priority-and-key.js";
import { Migration0015Namespaces } from "./0015-namespaces.js";
import { Migration0016NamespacedConcurrencyLimits } from "./0016-namespaced-concurrency-limits.js";
import { Migration0017RateWindowIndex } from "./0017-rate-window-index.js";
import { Migration0018KeyInUseById } from "./0018-key-in-use-by-id.js";

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
  { name: "0007-job-webhooks", class: Migration0007JobWebhooks },
  { name: "0008-idempotency-and-pause", class: Migration0008IdempotencyAndPause },
  { name: "0009-cron-schedules", class: Migration0009CronSchedules },
  { name: "0010-dependencies-and-batches", class: Migration0010DependenciesAndBatches },
  { name: "0011-api-keys", class: Migration0011ApiKeys },
  { name: "0012-concurrency-limits", class: Migration0012ConcurrencyLimits },
  { name: "0013-queue-priority-and-key", class: Migration0013QueuePriorityAndKey },
  { name: "0015-namespaces", class: Migration0015Namespaces },
  { name: "0016-namespaced-concurrency-limits", class: Migration0016NamespacedConcurrencyLimits },
  { name: "0017-rate-window-index", class: Migration0017RateWindowIndex },
  { name: "0018-key-in-use-by-id", class: Migration0018KeyInUseById },
];
