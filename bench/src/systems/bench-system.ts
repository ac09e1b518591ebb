import type { PostgresCluster } from "../harness/postgres-cluster.js";
import type { Endpoint } from "../role/protocol.js";

/** The systems the bench compares, each a column of the table. */
export type SystemId = "jobwire" | "graphile-worker" | "pg-boss" | "bullmq" | "bullmq-aof";

/** What every system's deployment may draw on: the run's Postgres and, if installed, Redis. */
export interface BenchEnvironment {
  readonly postgres: PostgresCluster;
  /** Path of `redis-server`, or `undefined` when it is not installed. */
  readonly redisBinary: string | undefined;
}

/** Options of {@link BenchSystem.deploy}. */
export interface DeployOptions {
  /** The workload's id, used to name its database. */
  workload: string;
  /** Server replicas on the same data (Jobwire only). Default 1. */
  replicas?: number;
}

/**
 * One system brought up fresh for one workload: its own database (or Redis), and for Jobwire
 * its server processes. The harness starts producer and worker processes against it.
 */
export interface Deployment {
  /** Where the producer connects (the first server replica). */
  producerEndpoint(): Endpoint;
  /** Where workers connect: one endpoint per server replica (a peer has one). */
  workerEndpoints(): Endpoint[];
  /**
   * Jobs that have completed successfully, read from the system's own storage; `enqueued`
   * is how many were enqueued (graphile-worker deletes completed jobs, so it counts the rest).
   */
  completedCount(enqueued: number): Promise<number>;
  /**
   * Replaces the server processes with fresh ones on the same data, so that their peak memory
   * covers only what follows (Jobwire's servers are stateless). Nothing to do for the peers.
   */
  freshServers(): Promise<void>;
  /** Peak RSS in bytes of the server process (the largest replica; Redis for BullMQ), if any. */
  serverPeakRss(): number | undefined;
  /**
   * Jobs with a concurrency key, how many of them the admission loop admitted, and how many
   * still wait for admission (workload 6a; Jobwire only).
   */
  admissionCounts?(): Promise<AdmissionCounts>;
  /**
   * What the server processes of this deployment logged at warn level or above, replaced
   * ones included (Jobwire logs JSON at `warn`; the peers have no server process of ours).
   */
  serverWarnings?(): string[];
  /** Stops the servers and drops the data. */
  close(): Promise<void>;
}

/** See {@link Deployment.admissionCounts}. */
export interface AdmissionCounts {
  /** Jobs carrying a concurrency key. */
  keyed: number;
  /** Jobs the admission loop admitted (every job of a limited key, once it may run). */
  admitted: number;
  /** Jobs still pending and waiting for admission. */
  waiting: number;
  /**
   * The most jobs of one key admitted or running at once (a job counts from its admission to
   * its end): what the limit bounds, so more than the limit is a bug.
   */
  peakInUse: number;
  /**
   * The most jobs of one key leased at once (from lease to end). Admission tops a key up to
   * its limit, so {@link peakInUse} reaches it at once; the limit holds back the worker only
   * if this one reaches it.
   */
  peakRunning: number;
  /**
   * The most keyed jobs leased at once, all keys together: the worker's lease window as the
   * database sees it (leases held, and finished ones whose completion is not committed yet).
   */
  peakRunningTotal: number;
}

/** A system under test, as the harness drives it. */
export interface BenchSystem {
  readonly id: SystemId;
  /** Column header. */
  readonly label: string;
  /** `package@version` of what is measured. */
  readonly version: string;
  /** How it is configured, printed with the results. */
  readonly configuration: readonly string[];
  /** The producer role's entry (a TypeScript file under `bench/src`). */
  readonly producerScript: string;
  /** The worker role's entry. */
  readonly workerScript: string;
  /** Why it cannot run on this machine (with what to do about it), or `undefined`. */
  unavailable(environment: BenchEnvironment): string | undefined;
  /** Brings up a fresh backend for one workload run. */
  deploy(environment: BenchEnvironment, options: DeployOptions): Promise<Deployment>;
}
