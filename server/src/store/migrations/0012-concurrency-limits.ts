import { Migration } from "@mikro-orm/migrations";

/**
 * Concurrency keys, weights and limits.
 *
 * A job with a concurrency key covered by a `concurrency_limit` is inserted `pending` but
 * not `admitted`: the claim index only holds admitted pending jobs, so no worker can lease
 * it, and claims never scan past jobs waiting for a slot. The admission loop
 * (`workflows/admission-loop.ts`) admits waiting jobs per limit, under the limit row's
 * lock, while the limit's running + admitted count, weight, rate window and pause allow
 * (since decision 0007 it admits a job by leasing it to a worker). Jobs without a key, or
 * whose key no limit covers, are admitted at insert and cost nothing more.
 */
export class Migration0012ConcurrencyLimits extends Migration {
  override up(): void {
    this.addSql(`
      CREATE TABLE concurrency_limit (
        key text PRIMARY KEY CONSTRAINT concurrency_limit_key_format CHECK (key ~ '^([A-Za-z0-9][A-Za-z0-9_.:-]{0,127}[*]?|[*])$'),
        -- The key without its '*' for a prefix; the key itself otherwise.
        prefix text GENERATED ALWAYS AS (rtrim(key, '*')) STORED,
        is_prefix boolean GENERATED ALWAYS AS (right(key, 1) = '*') STORED,
        max_running integer CHECK (max_running > 0),
        max_weight integer CHECK (max_weight > 0),
        rate_count integer CHECK (rate_count > 0),
        rate_interval_ms integer CHECK (rate_interval_ms > 0),
        paused_until timestamptz,
        -- The bounds hold for each covered key on its own rather than for all of them together.
        per_key boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT concurrency_limit_rate_pair CHECK ((rate_count IS NULL) = (rate_interval_ms IS NULL))
      );

      -- The limit that governs a key: the exact one, else the longest prefix; NULL if none.
      CREATE FUNCTION jobwire_governing_limit(k text) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT key FROM concurrency_limit
        WHERE key = k OR (is_prefix AND starts_with(k, prefix))
        ORDER BY is_prefix, length(prefix) DESC
        LIMIT 1
      $$;

      ALTER TABLE job
        ADD COLUMN concurrency_key text CONSTRAINT job_concurrency_key_format CHECK (concurrency_key ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
        ADD COLUMN weight integer NOT NULL DEFAULT 1 CONSTRAINT job_weight_range CHECK (weight BETWEEN 1 AND 1000000),
        ADD COLUMN admitted boolean NOT NULL DEFAULT true,
        ADD COLUMN admitted_at timestamptz;

      -- Claims take admitted pending jobs only.
      DROP INDEX job_claim_idx;
      CREATE INDEX job_claim_idx ON job (queue, priority DESC, run_at, id) WHERE state = 'pending' AND admitted;
      -- Jobs waiting for admission, in admission order, per key.
      CREATE INDEX job_admission_idx ON job (concurrency_key, priority DESC, run_at, id) WHERE state = 'pending' AND NOT admitted;
      -- What a limit has in use: admitted pending and running jobs per key; and recent admissions.
      CREATE INDEX job_key_in_use_idx ON job (concurrency_key) INCLUDE (weight)
        WHERE concurrency_key IS NOT NULL AND (state = 'running' OR (state = 'pending' AND admitted));
      CREATE INDEX job_key_admitted_at_idx ON job (concurrency_key, admitted_at) WHERE concurrency_key IS NOT NULL AND admitted_at IS NOT NULL;
    `);
  }
}
