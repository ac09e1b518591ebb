import { Health } from "@jobwire/sdk/gen/grpc/health/v1/health_pb";
import { QueueService } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { WorkerService } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { EventService } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { ScheduleService } from "@jobwire/sdk/gen/jobwire/v1/schedule_service_pb";
import { AdminService } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { pathToFileURL } from "node:url";
import { accessControl } from "./auth/access-control.js";
import { bootstrapKeyFileOf } from "./auth/auth-config.js";
import { anonymousAdmin, ApiKeyAuthenticator } from "./auth/authenticator.js";
import { ensureBootstrapKey, warnIfNoApiKey } from "./auth/bootstrap-key.js";
import { qualifiedPrincipal, callerKey, callerOf } from "./auth/caller.js";
import { LiveStreams } from "./auth/live-streams.js";
import { adminServiceImpl } from "./rpc/admin-service.js";
import { listenTls, readTlsMaterial, type TlsMaterial } from "./http/tls-listener.js";
import { configFromEnv, type ServerConfig } from "./config.js";
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from "./db/embedded-postgres.js";
import { Dispatcher } from "./dispatch/dispatcher.js";
import { NotificationListener } from "./dispatch/notification-listener.js";
import { Wakeups } from "./dispatch/wakeups.js";
import { EventSignal } from "./events/event-signal.js";
import { eventServiceImpl } from "./rpc/event-service.js";
import { AddressGuard } from "./webhooks/address-guard.js";
import { GraphResolver } from "./workflows/graph-resolver.js";
import { AdmissionLoop } from "./workflows/admission-loop.js";
import { DeliveryLoop } from "./webhooks/delivery-loop.js";
import { WebhookSender } from "./webhooks/webhook-sender.js";
import { listenHttp1AndH2c, type DualListener } from "./http/listener.js";
import { eventSourceHandler } from "./http/event-source.js";
import { plainHttpRoutes } from "./http/plain-routes.js";
import { rpcHandler } from "./http/rpc-handler.js";
import { probeHandler } from "./http/probes.js";
import { createLogger, type Logger } from "./logger.js";
import { errorMappingInterceptor } from "./rpc/connect-errors.js";
import { healthServiceImpl } from "./rpc/health-service.js";
import { transportHeaderLimitBytes } from "./rpc/metadata-size.js";
import { OpenStreams } from "./rpc/open-streams.js";
import { requestGate } from "./rpc/request-gate.js";
import { MaintenanceLoop } from "./maintenance/maintenance-loop.js";
import { queueServiceImpl } from "./rpc/queue-service.js";
import { scheduleServiceImpl } from "./rpc/schedule-service.js";
import { ScheduleLoop } from "./schedules/schedule-loop.js";
import { workerServiceImpl } from "./rpc/worker-service.js";
import { openDatabase, type Database } from "./store/orm.js";

/** A running Jobwire server. */
export interface JobwireServer {
  /** The port serving gRPC, gRPC-Web and Connect. */
  readonly port: number;
  /** `http://host:port`, for clients. */
  readonly url: string;
  /** The database, for tests and tools that look at rows directly. */
  readonly db: Database;
  /**
   * Shuts down gracefully: reports NOT_SERVING, stops accepting, lets requests in flight
   * finish within the grace time, then closes the pool and any embedded Postgres. The
   * cleanup runs even when draining times out or fails.
   */
  close(): Promise<void>;
}

/**
 * The composition root: builds every part of the server from `config` and starts it. With
 * no `databaseUrl`, an embedded Postgres is started with its data in `config.dataDir`.
 */
export async function startJobwire(config: ServerConfig, logger: Logger = createLogger(config.logLevel)): Promise<JobwireServer> {
  let embedded: EmbeddedPostgresHandle | undefined;
  let db: Database | undefined;
  // Unreadable certificate files fail the start before anything else is started.
  const tls = config.tls && (await readTlsMaterial(config.tls));
  try {
    if (!config.databaseUrl) {
      embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, logger });
    }
    db = await openDatabase({ url: config.databaseUrl ?? embedded!.url, poolSize: config.dbPoolSize, connectionLifetimeS: config.dbConnectionLifetimeS, logger });
    const applied = await db.migrate();
    if (applied.length > 0) logger.info({ migrations: applied }, "applied migrations");
    if (config.auth.enabled && embedded) await ensureBootstrapKey(db.pool, bootstrapKeyFileOf(config.auth, config.dataDir), logger);
    else if (config.auth.enabled) await warnIfNoApiKey(db.pool, logger);
    return await serve(config, logger, db, config.databaseUrl ?? embedded!.url, embedded, tls);
  } catch (error) {
    await db?.close().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw error;
  }
}

async function serve(
  config: ServerConfig,
  logger: Logger,
  db: Database,
  databaseUrl: string,
  embedded: EmbeddedPostgresHandle | undefined,
  tls: TlsMaterial | undefined,
): Promise<JobwireServer> {
  const shutdown = new AbortController();
  const dispatcher = new Dispatcher(db.pool, logger.child({ component: "dispatcher" }));
  const maintenance = new MaintenanceLoop(
    db.pool,
    {
      cancelGraceMs: config.cancelGraceMs,
      fallbackPollMs: config.fallbackPollMs,
      retentionMs: config.retentionMs,
      eventRetentionMs: config.eventRetentionMs,
      retentionIntervalMs: config.retentionIntervalMs,
    },
    logger.child({ component: "maintenance" }),
  );
  const schedules = new ScheduleLoop(db.pool, { fallbackPollMs: config.fallbackPollMs }, logger.child({ component: "schedules" }));
  const eventSignal = new EventSignal();
  const eventRecheckMs = config.eventRecheckMs;
  const webhookSender = new WebhookSender(new AddressGuard(config.webhookAllowCidrs), config.webhookTimeoutMs);
  const deliveries = new DeliveryLoop(
    db.pool,
    webhookSender,
    {
      concurrency: 16,
      maxAttempts: config.webhookMaxAttempts,
      backoffMs: config.webhookBackoffMs,
      fallbackPollMs: config.fallbackPollMs,
      attemptLeaseMs: config.webhookTimeoutMs * 3,
    },
    logger.child({ component: "webhooks" }),
  );
  // Streams whose API key is revoked (a NOTIFY from any replica) or expires are ended.
  const liveStreams = new LiveStreams(db.pool, logger.child({ component: "auth" }));
  const graphResolver = new GraphResolver(db.pool, config.cancelGraceMs, config.fallbackPollMs, logger.child({ component: "graphs" }));
  const admissionLoop = new AdmissionLoop(db.pool, dispatcher, config.fallbackPollMs, logger.child({ component: "admission" }));
  dispatcher.onSlotsLeftEmpty(() => admissionLoop.slotsLeftEmpty());
  // Events committed, here or (NOTIFY) on another replica.
  const eventsCommitted = () => {
    eventSignal.wake();
    // Events may have put deliveries in the outbox (the trigger on job_event).
    deliveries.eventsCommitted();
    // A job may have finished: its graph or batch may move on, a slot may be free.
    graphResolver.eventsCommitted();
    admissionLoop.eventsCommitted();
  };
  const wakeups = new Wakeups(
    db.pool,
    {
      eventsCommitted,
      jobsReady: (queue) => dispatcher.wake(queue),
      dueAt: (epochMs) => maintenance.dueAt(epochMs),
      workerNotice: (notice) => dispatcher.onWorkerNotice(notice),
      scheduleDueAt: (epochMs) => schedules.dueAt(epochMs),
    },
    logger.child({ component: "wakeups" }),
  );
  dispatcher.announceThrough(wakeups);
  maintenance.announceThrough(wakeups);
  graphResolver.announceThrough(wakeups);
  schedules.announceThrough(wakeups);
  const notifications = new NotificationListener(
    databaseUrl,
    {
      onReady: (queue) => dispatcher.wake(queue),
      onScheduled: (epochMs) => maintenance.dueAt(epochMs),
      onWorkerNotice: (notice) => dispatcher.onWorkerNotice(notice),
      onEvents: eventsCommitted,
      onScheduleDue: (epochMs) => schedules.dueAt(epochMs),
      onApiKeyRevoked: (keyId) => liveStreams.revoked(keyId),
      onResync: () => {
        void liveStreams.sweep();
        eventSignal.wake();
        dispatcher.wake();
        maintenance.runSoon();
        schedules.runSoon();
      },
    },
    logger.child({ component: "notifications" }),
    db.poolBackendPids,
  );
  await notifications.start();
  // Expiries are announced by nothing: open streams' keys are checked at the fallback pace.
  liveStreams.start(config.fallbackPollMs);
  maintenance.start();
  schedules.start();
  deliveries.start();
  graphResolver.start();
  admissionLoop.start();
  // The slow fallback: now and then, recount every stream's leases and fill it, in case a
  // wake-up or a lease-ended notice was lost or a claim failed.
  const fallbackPoll = setInterval(() => {
    dispatcher.reconcile().catch((error: unknown) => logger.warn({ err: error }, "reconciling worker streams failed"));
  }, config.fallbackPollMs);
  const isReady = async () => {
    if (shutdown.signal.aborted) return false;
    try {
      return await db.isMigrated();
    } catch {
      return false;
    }
  };
  if (!config.auth.enabled) {
    logger.warn(
      { principal: config.defaultPrincipal },
      "AUTHENTICATION IS OFF (JOBWIRE_AUTH=off): anyone who reaches this port acts as an admin; use this only for local experiments",
    );
  }
  const access = accessControl({
    authenticator: config.auth.enabled ? new ApiKeyAuthenticator(db.pool) : anonymousAdmin(config.defaultPrincipal),
    db: db.pool,
    liveStreams,
    log: logger.child({ component: "auth" }),
  });
  const openStreams = new OpenStreams(config.maxStreamsPerPrincipal);
  const handler = rpcHandler({
    log: logger.child({ component: "rpc" }),
    readMaxBytes: config.maxRequestBytes,
    // A JSON payload level costs two message levels (Value and List/Struct), and the
    // handlers refuse payloads deeper than 64 levels naming the field: let those reach them.
    binaryOptions: { recursionLimit: 300 },
    // Unknown JSON keys and enum names are refused, not dropped: a misspelt field or state
    // would otherwise be ignored in silence (`states: ["RUNING"]` listed every job, a
    // `retryPolicy.maxAtempts` kept the default). Binary clients keep unknown fields as before.
    jsonOptions: { recursionLimit: 300, ignoreUnknownFields: false },
    // A deadline longer than a Node timer can wait (about 24.8 days) would fire at once and
    // end the call early: refuse it with INVALID_ARGUMENT instead.
    maxTimeoutMs: 2 ** 31 - 1,
    // Every RPC passes the limits and the authorization table before its body is even read.
    requestGate: requestGate({
      maxMetadataBytes: config.maxMetadataBytes,
      streams: openStreams,
      authorize: access.requestGate,
      // Health probes have no caller: they count together.
      principalOf: (context) => {
        const caller = context.values.get(callerKey);
        return caller ? qualifiedPrincipal(caller) : "anonymous";
      },
    }),
    interceptors: [errorMappingInterceptor(logger), access.interceptor],
    routes(router) {
      router.service(QueueService, queueServiceImpl({
        db,
        principalOf: callerOf,
        maxBatchSize: config.maxBatchSize,
        idempotencyWindowMs: config.idempotencyWindowMs,
        log: logger.child({ component: "queue-service" }),
        jobsReady: (queues) => wakeups.jobsReady(queues),
        jobScheduled: (runAt) => wakeups.jobScheduled(runAt),
        eventsCommitted: () => wakeups.eventsCommitted(),
        limitsChanged: () => admissionLoop.limitsChanged(),
        graphsCreated: () => graphResolver.graphsCreated(),
        webhookSender,
        webhookTargetsCreated: () => deliveries.targetsCreated(),
        cancelRequested: (lease, jobId, reason) => {
          wakeups.workerNotice({ type: "cancel", worker: lease.workerId, job: jobId, lease_token: lease.leaseToken, reason });
          // If the worker has not stopped by then, the lease is revoked.
          wakeups.dueAt(new Date(Date.now() + config.cancelGraceMs));
        },
      }));
      router.service(WorkerService, workerServiceImpl({
        db,
        dispatcher,
        wakeups,
        log: logger.child({ component: "workers" }),
        shutdownSignal: shutdown.signal,
        keepAliveMs: config.keepAliveMs,
      }));
      router.service(EventService, eventServiceImpl({
        db,
        signal: eventSignal,
        shutdownSignal: shutdown.signal,
        keepAliveMs: config.keepAliveMs,
        recheckMs: eventRecheckMs,
        readBatch: config.eventReadBatch,
      }));
      router.service(ScheduleService, scheduleServiceImpl({
        webhookUrlRefusal: (url) => webhookSender.refusal(url),
        db,
        principalOf: callerOf,
        scheduleDue: (nextRunAt) => wakeups.scheduleDue(nextRunAt),
      }));
      router.service(AdminService, adminServiceImpl({ db, log: logger.child({ component: "admin" }), keyRevoked: (keyId) => liveStreams.revoked(keyId) }));
      router.service(Health, healthServiceImpl({
        services: [QueueService.typeName, WorkerService.typeName, EventService.typeName, ScheduleService.typeName, AdminService.typeName],
        isReady,
        shutdownSignal: shutdown.signal,
      }));
    },
    fallback: plainHttpRoutes(probeHandler({ isReady }), eventSourceHandler({
      db,
      signal: eventSignal,
      shutdownSignal: shutdown.signal,
      keepAliveMs: config.keepAliveMs,
      recheckMs: eventRecheckMs,
      readBatch: config.eventReadBatch,
      log: logger.child({ component: "sse" }),
      authorize: async (authorization, callEnded) => {
        const caller = (await access.authorize(EventService.typeName, EventService.method.streamEvents.name, authorization))!;
        return { caller, revoked: access.watch(caller, callEnded) };
      },
      streams: openStreams,
      maxMetadataBytes: config.maxMetadataBytes,
    })),
  });
  const listenLimits = {
    maxHeaderBytes: transportHeaderLimitBytes(config.maxMetadataBytes),
    maxStreamsPerConnection: config.maxStreamsPerConnection,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
  };
  /** Stops what feeds work in: wake-ups, polls and worker streams (which keep their leases). */
  const stopFeeds = () => {
    shutdown.abort();
    clearInterval(fallbackPoll);
    liveStreams.stop();
    wakeups.stop();
    // Worker streams end now, keeping their leases: the workers reconnect and adopt them.
    dispatcher.closeAll();
  };
  /** Stops what runs in the background, after the listener (if any) has closed. */
  const stopBackground = async () => {
    maintenance.stop();
    await graphResolver.stop();
    await admissionLoop.stop();
    schedules.stop();
    // Deliveries in flight get a bounded time; one cut off is retried after restart.
    await deliveries.stop(config.shutdownGraceMs);
    await notifications.stop();
  };
  let listener: DualListener;
  try {
    listener = tls
      ? await listenTls(handler, config.host, config.port, tls, listenLimits)
      : await listenHttp1AndH2c(handler, config.host, config.port, listenLimits);
  } catch (error) {
    // The port is taken, say: the loops stop before the caller closes the pool under them.
    stopFeeds();
    await stopBackground();
    throw error;
  }
  const scheme = tls ? "https" : "http";
  const url = `${scheme}://${config.host.includes(":") ? `[${config.host}]` : config.host}:${listener.port}`;
  logger.info(
    { url, node: process.version, embeddedPostgres: embedded !== undefined, auth: config.auth.enabled ? "api-keys" : "off", tls: tls ? (tls.clientCa ? "client-certificates" : "server") : "off" },
    "jobwire serving gRPC, gRPC-Web and Connect",
  );

  let closing: Promise<void> | undefined;
  return {
    port: listener.port,
    url,
    db,
    close() {
      closing ??= (async () => {
        stopFeeds();
        try {
          await listener.close(config.shutdownGraceMs);
        } finally {
          await stopBackground();
          await db.close().catch((error: unknown) => logger.error({ err: error }, "closing the database pool failed"));
          await embedded?.stop().catch((error: unknown) => logger.error({ err: error }, "stopping embedded postgres failed"));
          logger.info("jobwire stopped");
        }
      })();
      return closing;
    },
  };
}

/** Runs the server as a process: configuration from the environment, stop on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const config = configFromEnv();
  const logger = createLogger(config.logLevel);
  // Handlers go in before anything starts: a signal during startup must not kill the
  // process with an embedded Postgres half started. Such a stop waits for startup, then
  // closes what it started.
  let starting: Promise<JobwireServer> | undefined;
  let signalled = false;
  const stop = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal }, "shutting down");
    (starting ?? Promise.reject(new Error("not started")))
      .then((server) => server.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  starting = startJobwire(config, logger);
  await starting;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
