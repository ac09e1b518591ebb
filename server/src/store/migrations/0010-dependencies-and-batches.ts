import { Migration } from "@mikro-orm/migrations";

/**
 * Batches and job dependencies.
 *
 * - `batch`: one row per EnqueueBatch request. It outlives its jobs' retention and is
 *   finished, with its one `batch_finished` event, once none of its jobs is unfinished.
 * - `job_dependency`: the edges of the job graph, child depends on parent.
 * - `job.graph_pending`: set on every job that has parents or dependants. Once such a job
 *   is finished, the graph resolver (`workflows/graph-resolver.ts`) settles it in one
 *   transaction: unblocks or cancels its children, walks dead-end cancellation upward, and
 *   clears the flag. Jobs outside any graph never enter its index, so the hot paths pay
 *   nothing for graphs.
 * - `job_event` and `webhook_delivery` may now belong to a batch instead of a job.
 */
export class Migration0010DependenciesAndBatches extends Migration {
  override up(): void {
    this.addSql(`
      CREATE TABLE batch (
        id uuid PRIMARY KEY,
        owner text NOT NULL,
        total integer NOT NULL CHECK (total > 0),
        webhooks jsonb CHECK (jsonb_typeof(webhooks) = 'array'),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        finished_at timestamptz CONSTRAINT batch_finished_after_created CHECK (finished_at >= created_at)
      );
      CREATE INDEX batch_open_idx ON batch (created_at) WHERE finished_at IS NULL;
      CREATE INDEX batch_webhooks_idx ON batch (id) WHERE webhooks IS NOT NULL;

      ALTER TABLE job
        ADD COLUMN batch_id uuid,
        ADD COLUMN ref text CONSTRAINT job_ref_format CHECK (ref ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
        ADD COLUMN graph_pending boolean NOT NULL DEFAULT false,
        ADD COLUMN cancel_unneeded_parents boolean NOT NULL DEFAULT false,
        ADD COLUMN barrier boolean NOT NULL DEFAULT false;
      -- Counts per state, and whether a batch still has unfinished jobs, in index probes.
      CREATE INDEX job_batch_idx ON job (batch_id, state) WHERE batch_id IS NOT NULL;
      CREATE INDEX job_graph_settle_idx ON job (finished_at) WHERE graph_pending AND state IN ('succeeded', 'failed', 'cancelled');
      -- Whether any graph is still moving, in one probe (the resolver idles without one).
      CREATE INDEX job_graph_pending_idx ON job (id) WHERE graph_pending;

      CREATE TABLE job_dependency (
        child_id uuid NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        parent_id uuid NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        requires_success boolean NOT NULL,
        PRIMARY KEY (child_id, parent_id),
        CONSTRAINT job_dependency_not_self CHECK (child_id <> parent_id)
      );
      CREATE INDEX job_dependency_parent_idx ON job_dependency (parent_id);

      ALTER TABLE job_event ALTER COLUMN job_id DROP NOT NULL, ALTER COLUMN queue DROP NOT NULL, ADD COLUMN batch_id uuid;
      ALTER TABLE job_event ADD CONSTRAINT job_event_of_job_or_batch CHECK (job_id IS NOT NULL OR batch_id IS NOT NULL);
      CREATE INDEX job_event_batch_idx ON job_event (batch_id, id) WHERE batch_id IS NOT NULL;

      ALTER TABLE webhook_delivery ALTER COLUMN job_id DROP NOT NULL, ALTER COLUMN queue DROP NOT NULL, ADD COLUMN batch_id uuid;

      CREATE OR REPLACE FUNCTION jobwire_enqueue_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        by_queue boolean := EXISTS (SELECT 1 FROM webhook_subscription);
        by_job boolean := EXISTS (SELECT 1 FROM job WHERE webhooks IS NOT NULL);
        by_batch boolean := EXISTS (SELECT 1 FROM batch WHERE webhooks IS NOT NULL);
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
          WHERE by_queue AND s.queue = e.queue AND (cardinality(s.event_types) = 0 OR e.type = ANY(s.event_types))
          UNION ALL
          SELECT NULL, t.target->>'url', ws.secret, t.target->>'secret_name'
          FROM job j
          CROSS JOIN LATERAL jsonb_array_elements(j.webhooks) AS t(target)
          LEFT JOIN webhook_secret ws ON ws.name = t.target->>'secret_name'
          WHERE by_job AND j.id = e.job_id AND j.webhooks IS NOT NULL
            AND (jsonb_array_length(t.target->'event_types') = 0 OR t.target->'event_types' ? e.type)
          UNION ALL
          SELECT NULL, t.target->>'url', ws.secret, t.target->>'secret_name'
          FROM batch b
          CROSS JOIN LATERAL jsonb_array_elements(b.webhooks) AS t(target)
          LEFT JOIN webhook_secret ws ON ws.name = t.target->>'secret_name'
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
