import type { MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { Health } from "@jobwire/sdk/gen/grpc/health/v1/health_pb";
import { AdminService } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { EventService } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import type { JobSpec } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { QueueService } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { ScheduleService } from "@jobwire/sdk/gen/jobwire/v1/schedule_service_pb";
import { WorkerService, type LeaseRef } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import type { Role } from "./roles.js";

/**
 * Who may call one RPC. `allow` is checked before the request body is read; the other
 * fields name what in the request must belong to the caller, checked once it is parsed.
 * Whatever the role, a job or batch a request names must be of the caller's namespace.
 */
export interface MethodRule<Request = never> {
  /** The roles that may call it, or `public`: no key needed (health checks only). */
  allow: readonly Role[] | "public";
  /**
   * Job ids the request acts on. One of another namespace is answered exactly as one that
   * does not exist: `NOT_FOUND`; for a producer, which must own it, both are
   * `PERMISSION_DENIED`, as another principal's job is.
   */
  jobs?: (request: Request) => Iterable<string>;
  /** Batch ids the request acts on, as `jobs`. */
  batches?: (request: Request) => Iterable<string>;
  /**
   * Existing jobs that new jobs name as parents: a producer must own them
   * (`PERMISSION_DENIED`). The enqueue looks them up in the caller's namespace only, so
   * one of another namespace is an unknown parent there, as one that does not exist.
   */
  parentJobs?: (request: Request) => Iterable<string>;
  /**
   * A listing or stream that shows a producer only its own principal's jobs, batches or
   * events. The handler does it (`scopeOf`); this says so for the docs' table.
   */
  ownOnly?: true;
  /** Queues a worker key must name (the queues of LeaseJobs). */
  workerQueues?: (request: Request) => Iterable<string>;
  /**
   * Job ids of leases: the job must be of the caller's namespace and, for a worker key, of
   * a queue the key names; else `PERMISSION_DENIED`. An id of no job passes: the worker
   * calls answer it as their protocol says.
   */
  workerJobs?: (request: Request) => Iterable<string>;
}

/** The rules of every method of a service, by the method's local (camelCase) name. */
type ServiceRules<Methods extends GenServiceMethods> = {
  [Name in keyof Methods]: MethodRule<MessageShape<Methods[Name]["input"]>>;
};

const admin = ["admin"] as const;
const adminOrProducer = ["admin", "producer"] as const;
const anyReader = ["admin", "reader", "producer"] as const;
const adminOrReader = ["admin", "reader"] as const;
const adminOrWorker = ["admin", "worker"] as const;

const parentJobIds = (spec: JobSpec | undefined) =>
  (spec?.dependsOn ?? []).flatMap((dependency) => (dependency.parent.case === "jobId" ? [dependency.parent.value] : []));
const leaseJobIds = (leases: readonly (LeaseRef | undefined)[]) => leases.flatMap((lease) => (lease ? [lease.jobId] : []));

/**
 * THE authorization table: every RPC of every service the server serves, with the roles
 * that may call it. An RPC that is missing here is refused for everyone (fail closed); the
 * type below makes a missing method a compile error, and a test checks every registered
 * service against it. docs/security.md shows it as a table, checked by a test.
 *
 * Every caller is confined to its namespace, and producers to their own principal's jobs,
 * here (`jobs`, `batches`, `parentJobs`, `workerJobs`) and, for listings, streams and
 * everything named by name (queues, webhooks, schedules, limits, keys), by the handlers'
 * queries (`scopeOf`).
 */
const services = [
  serviceRules(QueueService, {
    enqueue: { allow: adminOrProducer, parentJobs: (r) => parentJobIds(r.job) },
    enqueueBatch: { allow: adminOrProducer, parentJobs: (r) => r.jobs.flatMap(parentJobIds) },
    // Its jobs may not have parents (each such job is refused on its own).
    enqueueJobs: { allow: adminOrProducer },
    getJob: { allow: anyReader, jobs: (r) => [r.id] },
    listJobs: { allow: anyReader, ownOnly: true },
    cancelJob: { allow: adminOrProducer, jobs: (r) => [r.id] },
    retryJob: { allow: adminOrProducer, jobs: (r) => [r.id] },
    getQueue: { allow: anyReader },
    updateQueue: { allow: admin },
    createWebhookSubscription: { allow: admin },
    deleteWebhookSubscription: { allow: admin },
    listWebhookSubscriptions: { allow: adminOrReader },
    putWebhookSecret: { allow: admin },
    deleteWebhookSecret: { allow: admin },
    listWebhookSecrets: { allow: adminOrReader },
    getBatch: { allow: anyReader, batches: (r) => [r.id] },
    listBatches: { allow: anyReader, ownOnly: true },
    cancelBatch: { allow: adminOrProducer, batches: (r) => [r.id] },
    getJobGraph: { allow: anyReader, batches: (r) => [r.batchId] },
    // Limits bound every principal's jobs alike: operators set them.
    setConcurrencyLimit: { allow: admin },
    deleteConcurrencyLimit: { allow: admin },
    listConcurrencyLimits: { allow: adminOrReader },
    pauseConcurrencyKey: { allow: admin },
    // A producer holds and releases its own jobs; queues are shared, so operators pause them.
    pauseJob: { allow: adminOrProducer, jobs: (r) => [r.id] },
    resumeJob: { allow: adminOrProducer, jobs: (r) => [r.id] },
    pauseQueue: { allow: admin },
    resumeQueue: { allow: admin },
  }),
  // Schedules enqueue jobs on their own, owned by their creator: operators manage them
  // until schedules are scoped to principals.
  serviceRules(ScheduleService, {
    createSchedule: { allow: admin },
    getSchedule: { allow: adminOrReader },
    listSchedules: { allow: adminOrReader },
    deleteSchedule: { allow: admin },
    pauseSchedule: { allow: admin },
    resumeSchedule: { allow: admin },
  }),
  serviceRules(WorkerService, {
    leaseJobs: { allow: adminOrWorker, workerQueues: (r) => r.queues, workerJobs: (r) => leaseJobIds(r.heldLeases) },
    heartbeat: { allow: adminOrWorker, workerJobs: (r) => leaseJobIds(r.leases) },
    reportProgress: { allow: adminOrWorker, workerJobs: (r) => leaseJobIds([r.lease]) },
    completePhase: { allow: adminOrWorker, workerJobs: (r) => leaseJobIds([r.lease]) },
    completeJob: { allow: adminOrWorker, workerJobs: (r) => leaseJobIds([r.lease]) },
    completeJobs: { allow: adminOrWorker, workerJobs: (r) => leaseJobIds(r.completions.map((c) => c.lease)) },
    failJob: { allow: adminOrWorker, workerJobs: (r) => leaseJobIds([r.lease]) },
  }),
  // Producers' streams and listings carry only their own jobs' events (scopeOf).
  serviceRules(EventService, {
    streamEvents: { allow: anyReader, ownOnly: true },
    listEvents: { allow: anyReader, ownOnly: true },
  }),
  serviceRules(AdminService, {
    createApiKey: { allow: admin },
    listApiKeys: { allow: admin },
    revokeApiKey: { allow: admin },
  }),
  // Load balancers and orchestrators probe without credentials.
  serviceRules(Health, {
    check: { allow: "public" },
    watch: { allow: "public" },
  }),
];

/** One service's rules, by the method's proto name (`Enqueue`), with its descriptor. */
export interface ServiceEntry {
  readonly service: GenService<GenServiceMethods>;
  readonly methods: ReadonlyMap<string, MethodRule<unknown>>;
}

/** The table by service type name (`jobwire.v1.QueueService`). */
export const authorizationTable: ReadonlyMap<string, ServiceEntry> = new Map(services.map((entry) => [entry.service.typeName, entry]));

/**
 * The rule of `service` (its type name) / `method` (its proto name), or undefined when
 * there is none, which the request gate refuses.
 */
export function ruleFor(service: string, method: string): MethodRule<unknown> | undefined {
  return authorizationTable.get(service)?.methods.get(method);
}

function serviceRules<Methods extends GenServiceMethods>(service: GenService<Methods>, rules: ServiceRules<Methods>): ServiceEntry {
  const byLocalName = rules as unknown as Record<string, MethodRule<unknown> | undefined>;
  const methods = new Map<string, MethodRule<unknown>>();
  for (const method of service.methods) {
    const rule = byLocalName[method.localName];
    if (rule) methods.set(method.name, rule);
  }
  return { service: service as unknown as GenService<GenServiceMethods>, methods };
}
