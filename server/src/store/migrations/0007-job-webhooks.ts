import { Migration } from "@mikro-orm/migrations";

/**
 * Webhook targets per job, signed with named secrets. A job stores its targets (URL, event
 * types, secret name) in `job.webhooks`; the secrets live in `webhook_secret`, so none
 * travels with a job or shows in its reads, and rotating one takes effect at once. The
 * outbox trigger now also turns a job's events into deliveries to its own targets, copying
 * the secret as it is when the event is written; a target whose secret is gone gets a
 * delivery without one, which the delivery loop fails with a `webhook_failed` event.
 */
export class Migration0007JobWebhooks extends Migration {
  override up(): void {
    this.addSql(`
      CREATE TABLE webhook_secret (
        name text PRIMARY KEY,
        secret text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
      );

      ALTER TABLE job ADD COLUMN webhooks jsonb CHECK (jsonb_typeof(webhooks) = 'array');
      -- Lets the trigger tell in one probe whether any job has targets at all.
      CREATE INDEX job_webhooks_idx ON job (id) WHERE webhooks IS NOT NULL;

      ALTER TABLE webhook_delivery ALTER COLUMN subscription_id DROP NOT NULL;
      ALTER TABLE webhook_delivery ALTER COLUMN secret DROP NOT NULL;
      ALTER TABLE webhook_delivery ADD COLUMN secret_name text;

      CREATE OR REPLACE FUNCTION jobwire_enqueue_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        by_queue boolean := EXISTS (SELECT 1 FROM webhook_subscription);
        by_job boolean := EXISTS (SELECT 1 FROM job WHERE webhooks IS NOT NULL);
      BEGIN
        -- The common case, no subscription and no job target at all, costs two index probes.
        IF NOT by_queue AND NOT by_job THEN
          RETURN NULL;
        END IF;
        INSERT INTO webhook_delivery (subscription_id, event_id, job_id, queue, event_type, url, secret, secret_name, body)
        SELECT target.subscription_id, e.id, e.job_id, e.queue, e.type, target.url, target.secret, target.secret_name,
               jsonb_build_object('type', e.type, 'eventId', e.id::text, 'jobId', e.job_id, 'queue', e.queue,
                                  'attempt', e.attempt, 'at', e.at, 'data', e.data)
        FROM new_events e
        CROSS JOIN LATERAL (
          SELECT s.id AS subscription_id, s.url, s.secret, NULL::text AS secret_name
          FROM webhook_subscription s
          WHERE by_queue AND s.queue = e.queue AND (cardinality(s.event_types) = 0 OR e.type = ANY(s.event_types))
          UNION ALL
          SELECT NULL, t.target->>'url', ws.secret, t.target->>'secret_name'
          FROM job j
          CROSS JOIN LATERAL jsonb_array_elements(j.webhooks) AS t(target)
          LEFT JOIN webhook_secret ws ON ws.name = t.target->>'secret_name'
          WHERE by_job AND j.id = e.job_id AND j.webhooks IS NOT NULL
            AND (jsonb_array_length(t.target->'event_types') = 0 OR t.target->'event_types' ? e.type)
        ) target
        -- A delivery's own events never trigger deliveries.
        WHERE e.type NOT IN ('webhook_delivered', 'webhook_failed');
        RETURN NULL;
      END $$;
    `);
  }
}
