import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { QueueService, type ListJobsRequest } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import type { JobSpec } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { cancelJob } from "../jobs/cancel-job.js";
import { jobLimits } from "../jobs/defaults.js";
import { JobEnqueuer } from "../jobs/enqueue-jobs.js";
import { scopeOf, type Caller } from "../auth/caller.js";
import { getJob, listJobs, type JobFilter } from "../jobs/read-jobs.js";
import { pauseJob, resumeJob } from "../jobs/pause-job.js";
import { retryJob } from "../jobs/retry-job.js";
import type { Database } from "../store/orm.js";
import type { Logger } from "../logger.js";
import { connectErrorFrom, invalidArgument } from "./connect-errors.js";
import { checkJobId, jobIdPattern } from "./job-id.js";
import { webhookSubscriptionHandlers } from "./webhook-subscriptions.js";
import { batchHandlers } from "./batch-handlers.js";
import { concurrencyHandlers } from "./concurrency-handlers.js";
import { v7 as uuidv7 } from "uuid";
import { parentsMustExist, resolveJobGraph } from "./validate-job-graph.js";
import { checkWebhookTargets } from "./validate-webhook-target.js";
import { checkWebhookSecretsExist, webhookSecretHandlers } from "./webhook-secrets.js";
import type { WebhookSender } from "../webhooks/webhook-sender.js";
import { jobMessage, jobStateName } from "./job-message.js";
import { checkStorableString } from "./json-value.js";
import { decodePageToken, encodePageToken, filterFingerprint } from "./page-token.js";
import { millisFromDuration, rfc3339FromTimestamp } from "./proto-time.js";
import { checkMetadata, checkName, newJobFromSpec } from "./validate-job-spec.js";
import { jobSettingsFrom } from "./validate-job-settings.js";
import { queueMessage } from "./queue-message.js";
import { queueAddress, queueAddressesOf, type QueueAddress } from "../dispatch/queue-address.js";
import { queuePause, queueResume, queueSelect, queueUpsertSettings } from "../store/sql/queue-settings.js";

/** What the QueueService handlers need. */
export interface QueueServiceDeps {
  db: Database;
  /** Who a request acts as, as the request gate authenticated it. */
  principalOf(context: Pick<HandlerContext, "values">): Caller;
  /** Most jobs in one EnqueueBatch or EnqueueJobs. */
  maxBatchSize: number;
  /** Where EnqueueJobs logs the internal errors it answers a job with. */
  log: Logger;
  /** How long a finished job keeps its idempotency key when its queue sets no window. */
  idempotencyWindowMs: number;
  /**
   * Called after a commit that made jobs of these queues pending, so that this replica's
   * dispatcher leases them without waiting for the NOTIFY round trip. Only a shortcut:
   * the NOTIFY sent by the same commit wakes every replica anyway.
   */
  jobsReady(queues: Iterable<QueueAddress>): void;
  /** Called after a commit that scheduled a job for `runAt`. */
  jobScheduled(runAt: Date): void;
  /** Checks and sends webhooks; subscriptions are validated against it. */
  webhookSender: WebhookSender;
  /** Called after a webhook subscription, or a job with webhook targets, was created. */
  webhookTargetsCreated(): void;
  /** Called after a concurrency limit changed or a job waiting for one was enqueued. */
  limitsChanged(): void;
  /** Called after a batch or a job with dependencies was created. */
  graphsCreated(): void;
  /** Called after any other commit that wrote events: event streams read again. */
  eventsCommitted(): void;
  /** Called after a commit that requested the cancel of a running job: tell its worker. */
  cancelRequested(lease: { workerId: string; leaseToken: string }, jobId: string, reason: string): void;
}

/**
 * The QueueService handlers: validate at the edge, call the job state machine, answer
 * with the wire form. Errors are mapped to Connect codes by the error interceptor.
 */
export function queueServiceImpl(deps: QueueServiceDeps): ServiceImpl<typeof QueueService> {
  const { db } = deps;
  const enqueuer = new JobEnqueuer(db, { idempotencyWindowMs: deps.idempotencyWindowMs });
  const webhookUrlRefusal = (url: string) => deps.webhookSender.refusal(url);
  const namespaceOf = (context: Pick<HandlerContext, "values">) => deps.principalOf(context).namespace;
  /** Refuses an empty `jobs`, and more than `maxBatchSize` of them (RESOURCE_EXHAUSTED). */
  function checkJobCount(jobs: readonly unknown[], per: "batch" | "call"): void {
    if (jobs.length === 0) throw invalidArgument("jobs", "must not be empty");
    if (jobs.length > deps.maxBatchSize) {
      throw new ConnectError(`jobs has ${jobs.length} entries, more than the limit of ${deps.maxBatchSize} per ${per}`, Code.ResourceExhausted);
    }
  }

  /** Enqueue's work for one job, also done for each job of EnqueueJobs. */
  async function enqueueOne(spec: JobSpec | undefined, context: HandlerContext) {
    const job = newJobFromSpec(spec, "job", webhookUrlRefusal);
    if (job.ref !== null) throw invalidArgument("job.ref", "applies only to the jobs of EnqueueBatch");
    const graph = resolveJobGraph([job], () => "job");
    const principal = deps.principalOf(context);
    await checkWebhookSecretsExist(db, principal.namespace, [{ webhooks: job.webhooks, field: "job.webhooks" }]);
    const { job: row, deduplicated } = await parentsMustExist(graph.existingParents, () =>
      enqueuer.enqueue(principal, job, { batch: null, edges: graph.edges, existingParentIds: graph.existingParents.map((p) => p.jobId) }),
    );
    if (!deduplicated) {
      if (job.webhooks) deps.webhookTargetsCreated();
      if (job.dependsOn.length > 0) deps.graphsCreated();
      if (row.state === "pending") deps.jobsReady([queueAddress(row.namespace, row.queue)]);
      if (row.state === "scheduled") deps.jobScheduled(row.runAt);
      // A parent may have finished already: the graph resolver decides, woken by the events.
      if (row.state === "blocked") deps.eventsCommitted();
      if (row.state === "pending" && !row.admitted) deps.limitsChanged();
    }
    return { job: jobMessage(row), deduplicated };
  }

  return {
    ...webhookSubscriptionHandlers(db, deps.webhookSender, deps.webhookTargetsCreated, namespaceOf),
    ...webhookSecretHandlers(db, namespaceOf),
    ...batchHandlers(deps),
    ...concurrencyHandlers({ db, namespaceOf, limitsChanged: deps.limitsChanged, jobsReady: deps.jobsReady }),

    enqueue: (request, context) => enqueueOne(request.job, context),

    async enqueueJobs(request, context) {
      checkJobCount(request.jobs, "call");
      // Each job on its own, side by side: their inserts still share statements and
      // commits (the enqueuer's batcher), and one refusal leaves the others standing.
      const results = await Promise.all(
        request.jobs.map(async (spec) => {
          try {
            if (spec.dependsOn.length > 0) throw invalidArgument("job.depends_on", "is not allowed in EnqueueJobs; use Enqueue or EnqueueBatch");
            return { result: { case: "enqueued" as const, value: await enqueueOne(spec, context) } };
          } catch (error) {
            const refusal = connectErrorFrom(error, deps.log);
            return { result: { case: "refused" as const, value: { code: refusal.code, message: refusal.rawMessage } } };
          }
        }),
      );
      return { results };
    },

    async enqueueBatch(request, context) {
      checkJobCount(request.jobs, "batch");
      const jobs = request.jobs.map((spec, index) => newJobFromSpec(spec, `jobs[${index}]`, webhookUrlRefusal));
      const graph = resolveJobGraph(jobs, (index) => `jobs[${index}]`);
      const batchWebhooks = checkWebhookTargets(request.webhooks, "webhooks", webhookUrlRefusal);
      const principal = deps.principalOf(context);
      await checkWebhookSecretsExist(db, principal.namespace, [
        ...jobs.map((job, index) => ({ webhooks: job.webhooks, field: `jobs[${index}].webhooks` })),
        { webhooks: batchWebhooks, field: "webhooks" },
      ]);
      const batchId = uuidv7();
      const { jobIds, deduplicated, batchCreated } = await parentsMustExist(graph.existingParents, () =>
        enqueuer.enqueueGraph(principal, jobs, {
          batch: { id: batchId, webhooks: batchWebhooks },
          edges: graph.edges,
          existingParentIds: graph.existingParents.map((p) => p.jobId),
        }),
      );
      if (batchWebhooks || jobs.some((job) => job.webhooks)) deps.webhookTargetsCreated();
      if (batchCreated) deps.graphsCreated();
      deps.jobsReady(queueAddressesOf(jobs.filter((job) => job.dependsOn.length === 0).map((job) => ({ namespace: principal.namespace, queue: job.queue }))));
      const delayed = jobs.filter((job) => job.runAt !== null || job.delayMs !== null);
      // A conservative earliest time: the maintenance loop asks the database for the exact one.
      if (delayed.length > 0) deps.jobScheduled(new Date(Math.min(...delayed.map((job) => job.runAt?.getTime() ?? Date.now() + job.delayMs!))));
      if (graph.existingParents.length > 0 || deduplicated.some(Boolean)) deps.eventsCommitted();
      if (jobs.some((job) => job.concurrencyKey !== null)) deps.limitsChanged();
      // Every entry deduplicated: nothing was created, not even the batch.
      return { jobIds, deduplicated, batchId: batchCreated ? batchId : "" };
    },

    async getJob(request) {
      return { job: jobMessage(await getJob(db, checkJobId(request.id, "id"))) };
    },

    async listJobs(request, context) {
      const filter: JobFilter = { ...jobFilterFrom(request), ...scopeOf(deps.principalOf(context)) };
      const pageSize = request.pageSize || jobLimits.pageSizeDefault;
      if (pageSize < 1 || pageSize > jobLimits.pageSizeMax) {
        throw invalidArgument("page_size", `must be between 0 and ${jobLimits.pageSizeMax}`);
      }
      const fingerprint = filterFingerprint(filter);
      const after = request.pageToken ? decodePageToken(request.pageToken, fingerprint, jobIdPattern, "ListJobs") : undefined;
      // One more than a page tells whether another page follows without a count query.
      const rows = await listJobs(db, filter, pageSize + 1, after);
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        jobs: page.map(jobMessage),
        nextPageToken: rows.length > pageSize && last ? encodePageToken(last.id, fingerprint) : "",
      };
    },

    async cancelJob(request, context) {
      const id = checkJobId(request.id, "id");
      checkReason(request.reason);
      const outcome = await cancelJob(db, deps.principalOf(context), id, request.reason);
      if (outcome.requestedLease) deps.cancelRequested(outcome.requestedLease, id, request.reason);
      else deps.eventsCommitted();
      return { job: jobMessage(outcome.job) };
    },

    async getQueue(request, context) {
      const name = checkName(request.name, "name");
      const queue = await queueSelect(db.pool, deps.principalOf(context).namespace, name);
      if (!queue) throw new ConnectError(`queue ${name} not found`, Code.NotFound);
      return { queue: queueMessage(queue) };
    },

    async updateQueue(request, context) {
      const name = checkName(request.name, "name");
      const defaults = request.defaults;
      const settings = jobSettingsFrom(defaults?.retryPolicy, defaults?.leaseTimeout, defaults?.executionTimeout, "defaults");
      const retentionMs = defaults?.retention
        ? millisFromDuration(defaults.retention, "defaults.retention", 1_000, 3650 * 86_400_000)
        : null;
      const idempotencyWindowMs = defaults?.idempotencyWindow
        ? millisFromDuration(defaults.idempotencyWindow, "defaults.idempotency_window", 0, jobLimits.idempotencyWindowMaxMs)
        : null;
      const concurrencyKey = defaults?.concurrencyKey ? checkName(defaults.concurrencyKey, "defaults.concurrency_key") : null;
      const priority = defaults?.priority ?? 0;
      if (!Number.isInteger(priority) || priority < jobLimits.priorityMin || priority > jobLimits.priorityMax) {
        throw invalidArgument("defaults.priority", `must be between ${jobLimits.priorityMin} and ${jobLimits.priorityMax}`);
      }
      const queue = await queueUpsertSettings(db.pool, deps.principalOf(context).namespace, name, settings, { retentionMs, idempotencyWindowMs, concurrencyKey, priority });
      return { queue: queueMessage(queue) };
    },

    async pauseQueue(request, context) {
      const name = checkName(request.name, "name");
      const queue = await queuePause(db.pool, deps.principalOf(context).namespace, name);
      return { queue: queueMessage(queue) };
    },

    async resumeQueue(request, context) {
      const name = checkName(request.name, "name");
      const { namespace } = deps.principalOf(context);
      const queue = await queueResume(db.pool, namespace, name);
      if (!queue) throw new ConnectError(`queue ${name} not found`, Code.NotFound);
      // Every replica's dispatcher claims for the queue again at once (NOTIFY).
      deps.jobsReady([queueAddress(namespace, name)]);
      return { queue: queueMessage(queue) };
    },

    async pauseJob(request, context) {
      const id = checkJobId(request.id, "id");
      checkReason(request.reason);
      const row = await pauseJob(db, deps.principalOf(context), id, request.reason);
      deps.eventsCommitted();
      return { job: jobMessage(row) };
    },

    async resumeJob(request, context) {
      const id = checkJobId(request.id, "id");
      const row = await resumeJob(db, deps.principalOf(context), id);
      if (row.state === "pending") deps.jobsReady([queueAddress(row.namespace, row.queue)]);
      else if (row.state === "scheduled") deps.jobScheduled(row.runAt);
      else deps.eventsCommitted();
      return { job: jobMessage(row) };
    },

    async retryJob(request, context) {
      const id = checkJobId(request.id, "id");
      const row = await retryJob(db, deps.principalOf(context), id, request.fromStart);
      deps.jobsReady([queueAddress(row.namespace, row.queue)]);
      return { job: jobMessage(row) };
    },
  };
}

function checkReason(reason: string): void {
  if (reason.length > jobLimits.reasonMaxLength) {
    throw invalidArgument("reason", `must be at most ${jobLimits.reasonMaxLength} characters`);
  }
  checkStorableString(reason, "reason");
}

function jobFilterFrom(request: ListJobsRequest): Omit<JobFilter, "namespace" | "owner"> {
  const limit = jobLimits.pageSizeMax;
  if (request.queues.length > limit) throw invalidArgument("queues", `must have at most ${limit} entries`);
  if (request.kinds.length > limit) throw invalidArgument("kinds", `must have at most ${limit} entries`);
  const states = request.states.map((state, index) => {
    const name = jobStateName(state);
    if (!name) throw invalidArgument(`states[${index}]`, "must be a job state other than UNSPECIFIED");
    return name;
  });
  const createdAfter = request.createdAfter ? rfc3339FromTimestamp(request.createdAfter, "created_after") : undefined;
  const createdBefore = request.createdBefore ? rfc3339FromTimestamp(request.createdBefore, "created_before") : undefined;
  return {
    queues: request.queues.map((queue, index) => checkName(queue, `queues[${index}]`)).sort(),
    kinds: request.kinds.map((kind, index) => checkName(kind, `kinds[${index}]`)).sort(),
    states: [...new Set(states)].sort(),
    createdAfter,
    createdBefore,
    metadata: Object.fromEntries(Object.entries(checkMetadata(request.metadata, "metadata")).sort()),
  };
}
