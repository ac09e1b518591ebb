import { Migration } from "@mikro-orm/migrations";

/**
 * The index of recent admissions holds only the jobs a rate limit counts.
 *
 * `job_key_admitted_at_idx` held every job ever admitted under any limit. Each later
 * update of such a job (its lease, its completion) is not HOT, so it wrote one more entry
 * there. That was three entries per keyed job, for an index that only rate windows read.
 * Now admission records whether the limit it admitted under had a rate
 * (`admitted_under_rate`), and only those jobs are indexed. A rate limit counts the
 * admissions made while a rate was in force. Jobs admitted in the last day (the longest
 * rate interval) keep counting after the upgrade.
 */
export class Migration0017RateWindowIndex extends Migration {
  override up(): void {
    this.addSql(`
      ALTER TABLE job ADD COLUMN admitted_under_rate boolean NOT NULL DEFAULT false;
      UPDATE job SET admitted_under_rate = true WHERE admitted_at > clock_timestamp() - interval '1 day';
      DROP INDEX job_key_admitted_at_idx;
      CREATE INDEX job_key_rate_window_idx ON job (namespace, concurrency_key, admitted_at) WHERE admitted_under_rate;
    `);
  }
}
