import { Migration } from "@mikro-orm/migrations";

/**
 * `job_key_in_use_idx` orders each key's entries by job id.
 *
 * Every lease of a keyed job adds an entry here (the new row version is running), and every
 * completion leaves that entry dead. Ordered by key alone, a key's entries follow their heap
 * position: each lease inserted at a random leaf among the key's live and dead entries. By
 * id (UUIDv7, so about enqueue order, the order leases take), a key's new entries go to its
 * right end and its dead ones gather at the left. The count per key reads the same prefix.
 */
export class Migration0018KeyInUseById extends Migration {
  override up(): void {
    this.addSql(`
      DROP INDEX job_key_in_use_idx;
      CREATE INDEX job_key_in_use_idx ON job (namespace, concurrency_key, id) INCLUDE (weight)
        WHERE concurrency_key IS NOT NULL AND (state = 'running' OR (state = 'pending' AND admitted));
    `);
  }
}
