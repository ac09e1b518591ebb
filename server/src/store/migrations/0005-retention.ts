import { Migration } from "@mikro-orm/migrations";

/**
 * Retention: a per-queue override of how long finished jobs are kept, and an index to find
 * the oldest finished jobs without scanning the table.
 */
export class Migration0005Retention extends Migration {
  override up(): void {
    this.addSql(`
      ALTER TABLE queue ADD COLUMN retention_ms bigint CHECK (retention_ms > 0);
      CREATE INDEX job_finished_idx ON job (finished_at) WHERE state IN ('succeeded', 'failed', 'cancelled');
    `);
  }
}
