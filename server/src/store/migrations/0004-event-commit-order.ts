import { Migration } from "@mikro-orm/migrations";

/**
 * Event streams read the log in commit-safe order, (tx_id, id): see `store/sql/event-select.ts`.
 */
export class Migration0004EventCommitOrder extends Migration {
  override up(): void {
    this.addSql(`CREATE INDEX job_event_tx_idx ON job_event (tx_id, id);`);
  }
}
