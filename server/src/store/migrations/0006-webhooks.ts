import { Migration } from "@mikro-orm/migrations";

/**
 * Webhooks as a durable outbox. A statement trigger on `job_event` inserts the deliveries
 * an event triggers in the very transaction that writes the event, so no code path can
 * forget one and none exists for a rolled-back change. A delivery copies what it needs
 * (URL, secret, body): it survives the deletion of its job or its subscription.
 */
export class Migration0006Webhooks extends Migration {
  override up(): void {
    this.addSql(`
      CREATE TABLE webhook_subscription (
        id uuid PRIMARY KEY,
        queue text NOT NULL,
        url text NOT NULL,
        event_types text[] NOT NULL DEFAULT '{}',
        secret text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX webhook_subscription_queue_idx ON webhook_subscription (queue);

      CREATE TABLE webhook_delivery (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        subscription_id uuid NOT NULL,
        event_id bigint NOT NULL,
        job_id uuid NOT NULL,
        queue text NOT NULL,
        event_type text NOT NULL,
        url text NOT NULL,
        secret text NOT NULL,
        body jsonb NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        last_error text,
        finished_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT webhook_delivery_finished_iff_done CHECK ((state = 'pending') = (finished_at IS NULL))
      );
      CREATE INDEX webhook_delivery_due_idx ON webhook_delivery (next_attempt_at) WHERE state = 'pending';

      CREATE FUNCTION jobwire_enqueue_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        -- The common case, no subscription at all, costs one index probe.
        IF NOT EXISTS (SELECT 1 FROM webhook_subscription) THEN
          RETURN NULL;
        END IF;
        INSERT INTO webhook_delivery (subscription_id, event_id, job_id, queue, event_type, url, secret, body)
        SELECT s.id, e.id, e.job_id, e.queue, e.type, s.url, s.secret,
               jsonb_build_object('type', e.type, 'eventId', e.id::text, 'jobId', e.job_id, 'queue', e.queue,
                                  'attempt', e.attempt, 'at', e.at, 'data', e.data)
        FROM new_events e
        JOIN webhook_subscription s ON s.queue = e.queue AND (cardinality(s.event_types) = 0 OR e.type = ANY(s.event_types))
        -- A delivery's own events never trigger deliveries.
        WHERE e.type NOT IN ('webhook_delivered', 'webhook_failed');
        RETURN NULL;
      END $$;
      CREATE TRIGGER job_event_webhooks AFTER INSERT ON job_event
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION jobwire_enqueue_webhooks();
    `);
  }
}
