import { Migration } from "@mikro-orm/migrations";

/**
 * API keys, and the owner of every event.
 *
 * - `api_key`: one row per key. The key is `jw_<id>_<secret>`; only SHA-256 of the secret
 *   part is stored (`secret_hash`), so a copy of the table lets no one in. Keys are looked
 *   up by `id` on every request, which makes revocation and expiry (both compared with the
 *   database clock) take effect at once on every replica.
 * - `job_event.owner`: the principal that owns the event's job (or batch), so that a
 *   producer's event streams and listings can be confined to its own jobs with a plain
 *   comparison, even after retention deleted the job. A row trigger fills it from the job,
 *   then the batch, then (for the `deleted` event written by the statement that deletes
 *   the job) the job's earlier events, so no statement that writes events has to know.
 */
export class Migration0011ApiKeys extends Migration {
  override up(): void {
    this.addSql(`
      CREATE TYPE api_key_role AS ENUM ('admin', 'producer', 'worker', 'reader');

      CREATE TABLE api_key (
        id text PRIMARY KEY CONSTRAINT api_key_id_format CHECK (id ~ '^[a-z0-9]{12}$'),
        secret_hash bytea NOT NULL CONSTRAINT api_key_secret_hash_length CHECK (octet_length(secret_hash) = 32),
        principal text NOT NULL CONSTRAINT api_key_principal_format CHECK (principal ~ '^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$'),
        role api_key_role NOT NULL,
        queues text[] NOT NULL DEFAULT '{}',
        description text NOT NULL DEFAULT '' CONSTRAINT api_key_description_length CHECK (char_length(description) <= 256),
        created_by text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        expires_at timestamptz CONSTRAINT api_key_expires_after_created CHECK (expires_at > created_at),
        revoked_by text,
        revoked_at timestamptz CONSTRAINT api_key_revoked_after_created CHECK (revoked_at >= created_at),
        -- A worker key names the queues it serves; no other key names any.
        CONSTRAINT api_key_queues_iff_worker CHECK ((role = 'worker') = (cardinality(queues) > 0)),
        CONSTRAINT api_key_revoked_by_iff_revoked CHECK (revoked_by IS NULL OR revoked_at IS NOT NULL)
      );
      -- ListApiKeys: newest first, optionally of one principal.
      CREATE INDEX api_key_created_idx ON api_key (created_at DESC, id DESC);
      CREATE INDEX api_key_principal_idx ON api_key (principal, created_at DESC, id DESC);

      ALTER TABLE job_event ADD COLUMN owner text;
      UPDATE job_event e SET owner = j.owner FROM job j WHERE j.id = e.job_id;
      UPDATE job_event e SET owner = b.owner FROM batch b WHERE e.job_id IS NULL AND b.id = e.batch_id;

      CREATE FUNCTION jobwire_event_owner() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.job_id IS NOT NULL THEN
          NEW.owner := (SELECT owner FROM job WHERE id = NEW.job_id);
          IF NEW.owner IS NULL THEN
            -- The job was deleted by this very statement (retention's DELETED event).
            NEW.owner := (SELECT owner FROM job_event WHERE job_id = NEW.job_id AND owner IS NOT NULL ORDER BY id LIMIT 1);
          END IF;
        ELSIF NEW.batch_id IS NOT NULL THEN
          NEW.owner := (SELECT owner FROM batch WHERE id = NEW.batch_id);
        END IF;
        RETURN NEW;
      END $$;
      -- Only where the inserting statement did not say: a hot path may set it itself.
      CREATE TRIGGER job_event_owner BEFORE INSERT ON job_event
        FOR EACH ROW WHEN (NEW.owner IS NULL) EXECUTE FUNCTION jobwire_event_owner();
    `);
  }
}
