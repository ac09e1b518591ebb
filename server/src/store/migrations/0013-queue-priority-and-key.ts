import { Migration } from "@mikro-orm/migrations";

/**
 * Two queue settings: `priority`, which orders a worker's claims across the queues it
 * serves (higher first), and `concurrency_key`, which jobs of the queue carry when they
 * bring none, so that a concurrency limit on that key bounds the whole queue.
 */
export class Migration0013QueuePriorityAndKey extends Migration {
  override up(): void {
    this.addSql(`
      ALTER TABLE queue
        ADD COLUMN priority smallint NOT NULL DEFAULT 0 CONSTRAINT queue_priority_range CHECK (priority BETWEEN -1000 AND 1000),
        ADD COLUMN concurrency_key text CONSTRAINT queue_concurrency_key_format CHECK (concurrency_key ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$');
    `);
  }
}
