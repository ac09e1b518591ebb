import { Migration } from "@mikro-orm/migrations";

/**
 * Concurrency limits per namespace, like everything else of a namespace (migration 0015):
 * a limit on key `api` of `acme` bounds acme's jobs of key `api` only, and globex may set
 * its own limit on a key of the same name. The governing limit of a job is looked up in its
 * own namespace, and the admission indexes lead with the namespace.
 */
export class Migration0016NamespacedConcurrencyLimits extends Migration {
  override up(): void {
    this.addSql(`
      ALTER TABLE concurrency_limit ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE concurrency_limit ALTER COLUMN namespace DROP DEFAULT;
      ALTER TABLE concurrency_limit DROP CONSTRAINT concurrency_limit_pkey, ADD PRIMARY KEY (namespace, key);

      -- The limit that governs key k of namespace ns: the exact one, else the longest prefix;
      -- NULL if none.
      CREATE FUNCTION jobwire_governing_limit(ns text, k text) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT key FROM concurrency_limit
        WHERE namespace = ns AND (key = k OR (is_prefix AND starts_with(k, prefix)))
        ORDER BY is_prefix, length(prefix) DESC
        LIMIT 1
      $$;
      DROP FUNCTION jobwire_governing_limit(text);

      DROP INDEX job_admission_idx;
      CREATE INDEX job_admission_idx ON job (namespace, concurrency_key, priority DESC, run_at, id) WHERE state = 'pending' AND NOT admitted;
      DROP INDEX job_key_in_use_idx;
      CREATE INDEX job_key_in_use_idx ON job (namespace, concurrency_key) INCLUDE (weight)
        WHERE concurrency_key IS NOT NULL AND (state = 'running' OR (state = 'pending' AND admitted));
      DROP INDEX job_key_admitted_at_idx;
      CREATE INDEX job_key_admitted_at_idx ON job (namespace, concurrency_key, admitted_at) WHERE concurrency_key IS NOT NULL AND admitted_at IS NOT NULL;
    `);
  }
}
