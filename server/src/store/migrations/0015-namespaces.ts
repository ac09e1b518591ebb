import { Migration } from "@mikro-orm/migrations";

/**
 * Namespaces (tenants). Every API key belongs to one, and so does everything its callers
 * make: jobs (and through them their events), batches, queues and their settings, webhook
 * subscriptions and secrets, idempotency keys and schedules. Names that were global are
 * now unique per namespace (a queue `emails` in two namespaces is two queues). What
 * existed before is in the namespace `default`, where callers also are when
 * authentication is off.
 *
 * The `namespace` columns of the tables callers write have no default once filled: an
 * insert that forgot to say whose row it is fails instead of landing in `default`.
 * Events take theirs from their job or batch, in the trigger that already sets their owner.
 */
export class Migration0015Namespaces extends Migration {
  override up(): void {
    this.addSql(`
      CREATE DOMAIN namespace_name AS text CONSTRAINT namespace_name_format CHECK (VALUE ~ '^[a-z0-9][a-z0-9_.-]{0,62}$');

      ALTER TABLE api_key ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE api_key ALTER COLUMN namespace DROP DEFAULT;
      CREATE INDEX api_key_namespace_created_idx ON api_key (namespace, created_at DESC, id DESC);

      ALTER TABLE job ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE job ALTER COLUMN namespace DROP DEFAULT;
      -- Claims and listings go by (namespace, queue): one namespace's backlog in a queue is
      -- never scanned by the claims of another's queue of the same name.
      DROP INDEX job_claim_idx;
      CREATE INDEX job_claim_idx ON job (namespace, queue, priority DESC, run_at, id) WHERE state = 'pending' AND admitted;
      DROP INDEX job_queue_id_idx;
      CREATE INDEX job_queue_id_idx ON job (namespace, queue, id);

      ALTER TABLE batch ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE batch ALTER COLUMN namespace DROP DEFAULT;

      ALTER TABLE job_event ADD COLUMN namespace namespace_name;
      UPDATE job_event SET namespace = 'default';
      -- No index of its own: streams read the log in commit order (job_event_tx_idx) and
      -- filter, as they do by owner; an index would cost every event's insert.

      ALTER TABLE queue ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE queue ALTER COLUMN namespace DROP DEFAULT;
      ALTER TABLE queue DROP CONSTRAINT queue_pkey, ADD PRIMARY KEY (namespace, name);

      ALTER TABLE webhook_subscription ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE webhook_subscription ALTER COLUMN namespace DROP DEFAULT;
      DROP INDEX webhook_subscription_queue_idx;
      CREATE INDEX webhook_subscription_queue_idx ON webhook_subscription (namespace, queue);

      ALTER TABLE webhook_secret ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE webhook_secret ALTER COLUMN namespace DROP DEFAULT;
      ALTER TABLE webhook_secret DROP CONSTRAINT webhook_secret_pkey, ADD PRIMARY KEY (namespace, name);

      ALTER TABLE idempotency_key ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE idempotency_key ALTER COLUMN namespace DROP DEFAULT;
      ALTER TABLE idempotency_key DROP CONSTRAINT idempotency_key_pkey, ADD PRIMARY KEY (namespace, queue, owner, key);

      ALTER TABLE schedule ADD COLUMN namespace namespace_name NOT NULL DEFAULT 'default';
      ALTER TABLE schedule ALTER COLUMN namespace DROP DEFAULT;
      ALTER TABLE schedule DROP CONSTRAINT schedule_name_unique, ADD CONSTRAINT schedule_name_unique UNIQUE (namespace, name);

      -- An event's owner and namespace are its job's (or, for a batch's own events, its
      -- batch's), whoever caused it. Only what the inserting statement left unset is filled.
      CREATE OR REPLACE FUNCTION jobwire_event_owner() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        found_owner text;
        found_namespace text;
      BEGIN
        IF NEW.job_id IS NOT NULL THEN
          SELECT owner, namespace INTO found_owner, found_namespace FROM job WHERE id = NEW.job_id;
          IF NOT FOUND THEN
            -- The job was deleted by this very statement (retention's DELETED event).
            SELECT owner, namespace INTO found_owner, found_namespace FROM job_event
            WHERE job_id = NEW.job_id AND owner IS NOT NULL ORDER BY id LIMIT 1;
          END IF;
        ELSIF NEW.batch_id IS NOT NULL THEN
          SELECT owner, namespace INTO found_owner, found_namespace FROM batch WHERE id = NEW.batch_id;
        END IF;
        NEW.owner := coalesce(NEW.owner, found_owner);
        NEW.namespace := coalesce(NEW.namespace, found_namespace);
        RETURN NEW;
      END $$;
      DROP TRIGGER job_event_owner ON job_event;
      CREATE TRIGGER job_event_owner BEFORE INSERT ON job_event
        FOR EACH ROW WHEN (NEW.owner IS NULL OR NEW.namespace IS NULL) EXECUTE FUNCTION jobwire_event_owner();

      -- Deliveries to a queue's subscriptions and with a job's or batch's named secrets:
      -- both looked up in the event's namespace.
      CREATE OR REPLACE FUNCTION jobwire_enqueue_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        by_queue boolean := EXISTS (SELECT 1 FROM webhook_subscription);
        -- Not EXISTS (… WHERE webhooks IS NOT NULL): until the table has statistics the
        -- planner may scan all of job for it, on every statement that writes events (3-6 ms
        -- a claim or completion). ORDER BY id LIMIT 1 walks the partial index instead.
        by_job boolean := (SELECT id FROM job WHERE webhooks IS NOT NULL ORDER BY id LIMIT 1) IS NOT NULL;
        by_batch boolean := (SELECT id FROM batch WHERE webhooks IS NOT NULL ORDER BY id LIMIT 1) IS NOT NULL;
      BEGIN
        -- The common case, no webhook target at all, costs three index probes.
        IF NOT by_queue AND NOT by_job AND NOT by_batch THEN
          RETURN NULL;
        END IF;
        INSERT INTO webhook_delivery (subscription_id, event_id, job_id, queue, batch_id, event_type, url, secret, secret_name, body)
        SELECT target.subscription_id, e.id, e.job_id, e.queue, e.batch_id, e.type, target.url, target.secret, target.secret_name,
               jsonb_build_object('type', e.type, 'eventId', e.id::text, 'jobId', e.job_id, 'queue', e.queue,
                                  'attempt', e.attempt, 'at', e.at, 'data', e.data)
                 || CASE WHEN e.batch_id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('batchId', e.batch_id) END
        FROM new_events e
        CROSS JOIN LATERAL (
          SELECT s.id AS subscription_id, s.url, s.secret, NULL::text AS secret_name
          FROM webhook_subscription s
          WHERE by_queue AND s.namespace = e.namespace AND s.queue = e.queue
            AND (cardinality(s.event_types) = 0 OR e.type = ANY(s.event_types))
          UNION ALL
          SELECT NULL, t.target->>'url', ws.secret, t.target->>'secret_name'
          FROM job j
          CROSS JOIN LATERAL jsonb_array_elements(j.webhooks) AS t(target)
          LEFT JOIN webhook_secret ws ON ws.namespace = j.namespace AND ws.name = t.target->>'secret_name'
          WHERE by_job AND j.id = e.job_id AND j.webhooks IS NOT NULL
            AND (jsonb_array_length(t.target->'event_types') = 0 OR t.target->'event_types' ? e.type)
          UNION ALL
          SELECT NULL, t.target->>'url', ws.secret, t.target->>'secret_name'
          FROM batch b
          CROSS JOIN LATERAL jsonb_array_elements(b.webhooks) AS t(target)
          LEFT JOIN webhook_secret ws ON ws.namespace = b.namespace AND ws.name = t.target->>'secret_name'
          WHERE by_batch AND e.job_id IS NULL AND b.id = e.batch_id AND b.webhooks IS NOT NULL
            AND (jsonb_array_length(t.target->'event_types') = 0 OR t.target->'event_types' ? e.type)
        ) target
        -- A delivery's own events never trigger deliveries.
        WHERE e.type NOT IN ('webhook_delivered', 'webhook_failed');
        RETURN NULL;
      END $$;
    `);
  }
}
