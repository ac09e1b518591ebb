import { Migration } from "@mikro-orm/migrations";

/**
 * Per-queue defaults for what a job's spec leaves unset: retry policy, lease timeout and
 * execution timeout. NULL means "the server's default". A job's own value wins over its
 * queue's, which wins over the server's.
 */
export class Migration0003QueueDefaults extends Migration {
  override up(): void {
    this.addSql(`
      ALTER TABLE queue
        ADD COLUMN max_attempts integer CHECK (max_attempts BETWEEN 1 AND 100000),
        ADD COLUMN backoff_initial_ms bigint CHECK (backoff_initial_ms >= 0),
        ADD COLUMN backoff_max_ms bigint CHECK (backoff_max_ms >= 0),
        ADD COLUMN backoff_multiplier double precision CHECK (backoff_multiplier >= 1),
        ADD COLUMN backoff_jitter double precision CHECK (backoff_jitter BETWEEN 0 AND 1),
        ADD COLUMN lease_timeout_ms integer CHECK (lease_timeout_ms > 0),
        ADD COLUMN execution_timeout_ms integer CHECK (execution_timeout_ms > 0),
        ADD COLUMN updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        ADD CONSTRAINT queue_backoff_ordered CHECK (backoff_max_ms >= backoff_initial_ms);
    `);
  }
}
