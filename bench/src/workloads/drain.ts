import { epochNow } from "../role/channel.js";
import { cpuPerJob, readCpuTicks, type CpuPerJob } from "../harness/cpu-time.js";
import type { RoleProcess } from "../harness/role-process.js";
import { BenchTimeoutError, pollUntil } from "../harness/wait-for.js";
import type { AdmissionCounts, BenchSystem } from "../systems/bench-system.js";
import { boundFor, connectProducer, spawnProducer, spawnWorker, withDeployment } from "./roles.js";
import type { WorkloadContext } from "./workload.js";

/** What {@link measureDrain} does. */
export interface DrainPlan {
  /** The workload's id (names the database). */
  workload: string;
  /** Jobs pre-enqueued before any worker runs. */
  enqueued: number;
  /** The drain is timed until this many have completed (the first `measured` of the backlog). */
  measured: number;
  /** Pre-enqueueing: jobs per batch call, and batch calls in flight. */
  loadBatch: number;
  loadInFlight: number;
  /** Server replicas (Jobwire) and worker processes, one per replica. Default 1. */
  replicas?: number;
  /** Concurrency of each worker process. */
  concurrencyPerWorker: number;
  /**
   * Workload 6a (Jobwire): before the pre-enqueue, a limit of `maxRunning` is set on each of
   * `keys`, and job `n` carries the key `keys[n % keys.length]`.
   */
  concurrencyLimits?: { keys: readonly string[]; maxRunning: number };
  /**
   * How long the drain may take. Past it the drain is cut short and the rate is taken over
   * the jobs completed by then (a system too slow to finish still gets a number, flagged).
   */
  boundMs: number;
}

/** What {@link measureDrain} measured. */
export interface DrainResult {
  /** Completed jobs per second, from the first handler start to the `measured`-th commit. */
  jobsPerSecond: number;
  /** Jobs completed in the timed window: `measured`, or fewer when the bound cut it short. */
  completed: number;
  /** Whether the bound cut the drain short. */
  cutShort: boolean;
  /** Pre-enqueue rate, jobs per second as the producer timed it. */
  loadJobsPerSecond: number;
  /** Peak RSS in bytes of the (fresh) server process over the drain, if the system has one. */
  serverPeakRss: number | undefined;
  /** Peak RSS in bytes of the (first) worker process. */
  workerPeakRss: number | undefined;
  /** With {@link DrainPlan.concurrencyLimits}: the keyed jobs and their admissions, read at the drain's end. */
  admission: AdmissionCounts | undefined;
  /** What the server processes logged at warn or above, load and drain included (Jobwire). */
  serverWarnings: string[];
  /**
   * The CPU each completed job took over the drain (from the workers' start to the count
   * that ended it), on the whole machine and in Postgres and Node; `undefined` without `/proc`.
   */
  cpuPerJob: CpuPerJob | undefined;
}

/**
 * Pre-enqueues `enqueued` jobs with the system's batch API, gives Jobwire fresh server
 * processes (so their peak memory covers only the drain), starts the worker process(es) and
 * times how fast the first `measured` jobs complete: from the first handler start (the
 * worker's clock) to the moment the system's own storage shows `measured` completed jobs (the
 * harness's clock; both are this machine's epoch clock). Past `boundMs` the drain is cut
 * short and timed over the jobs completed by then.
 */
export async function measureDrain(context: WorkloadContext, system: BenchSystem, plan: DrainPlan): Promise<DrainResult> {
  const replicas = plan.replicas ?? 1;
  return withDeployment(context, system, { workload: plan.workload, replicas }, async (deployment, track) => {
    const producer = track(spawnProducer(system));
    // Workers load their code while the producer works; they take jobs only once told to.
    const workers = Array.from({ length: replicas }, (_, i) => track(spawnWorker(system, replicas > 1 ? `worker ${i + 1}` : "worker")));
    await connectProducer(producer, deployment);
    const limits = plan.concurrencyLimits;
    // Limits first: a job whose key no limit covers is admitted at insert and never waits.
    if (limits) await producer.request({ cmd: "set-limits", keys: [...limits.keys], maxRunning: limits.maxRunning }, "limits-set", 60_000);
    const load = await producer.request(
      {
        cmd: "enqueue",
        mode: "batches",
        count: plan.enqueued,
        batchSize: plan.loadBatch,
        inFlight: plan.loadInFlight,
        ...(limits ? { concurrencyKeys: [...limits.keys] } : {}),
      },
      "enqueued",
      boundFor(plan.enqueued),
    );
    await producer.stop();
    await deployment.freshServers();

    const endpoints = deployment.workerEndpoints();
    // With one worker, it says when it has run `measured` handlers and the count is read only
    // then; with several, none knows the total, so the count is read as they go.
    const expect = workers.length === 1 ? plan.measured : 0;
    const cpuBefore = readCpuTicks();
    await Promise.all(
      workers.map(async (worker, i) => {
        await worker.loaded();
        await worker.request(
          { cmd: "start", endpoint: endpoints[i % endpoints.length]!, concurrency: plan.concurrencyPerWorker, expect, recordLatency: false },
          "started",
          60_000,
        );
      }),
    );
    const deadline = performance.now() + plan.boundMs;
    const left = () => Math.max(1, deadline - performance.now());
    let finishedAt: number;
    let completed = plan.measured;
    try {
      if (expect > 0) await workers[0]!.next("handled", left());
      finishedAt = await completedAt(workers, () => deployment.completedCount(plan.enqueued), plan.measured, expect > 0 ? 5 : 25, left());
    } catch (error) {
      if (!(error instanceof BenchTimeoutError)) throw error;
      finishedAt = epochNow();
      completed = await deployment.completedCount(plan.enqueued);
      if (completed === 0) {
        const waiting = limits && deployment.admissionCounts ? `; ${(await deployment.admissionCounts()).waiting} jobs still wait for admission` : "";
        throw new Error(`no job completed within the bound of ${plan.boundMs / 1000} s${waiting}`, { cause: error });
      }
    }
    const cpuAfter = readCpuTicks();
    // Workers that ran a job have announced their first by now (events are kept until taken).
    const firsts = workers.flatMap((worker) => worker.takeReceived("first-job"));
    if (firsts.length === 0) throw new Error("jobs completed but no worker announced its first job");
    const startedAt = Math.min(...firsts.map((event) => event.at));
    let admission: AdmissionCounts | undefined;
    if (limits) {
      if (!deployment.admissionCounts) throw new Error(`${system.label} has no concurrency keys`);
      admission = await deployment.admissionCounts();
    }
    return {
      jobsPerSecond: (completed / (finishedAt - startedAt)) * 1000,
      completed,
      cutShort: completed < plan.measured,
      loadJobsPerSecond: (plan.enqueued / load.ms) * 1000,
      serverPeakRss: deployment.serverPeakRss(),
      workerPeakRss: workers[0]!.process.peakRssBytes(),
      admission,
      serverWarnings: deployment.serverWarnings?.() ?? [],
      cpuPerJob: cpuPerJob(cpuBefore, cpuAfter, completed),
    };
  });
}

/**
 * A note for a drain the bound cut short, for the table's caveats.
 */
export function cutShortNote(result: DrainResult, plan: DrainPlan): string {
  return `only ${result.completed.toLocaleString("en-US")} of ${plan.measured.toLocaleString("en-US")} jobs completed within the ${plan.boundMs / 1000} s bound; the rate is over those`;
}

/**
 * A note for a drain during which the servers logged warnings or errors, for the table's
 * caveats; `undefined` if they logged none.
 */
export function serverWarningsNote(result: DrainResult): string | undefined {
  const lines = result.serverWarnings;
  if (lines.length === 0) return undefined;
  const distinct = [...new Set(lines)];
  const shown = distinct.slice(0, 3).map((line) => (line.length > 200 ? `${line.slice(0, 200)}…` : line));
  return `the server logged ${lines.length} line(s) at warn or above: ${shown.join(" | ")}${distinct.length > 3 ? ` (+${distinct.length - 3} more distinct)` : ""}`;
}

/**
 * Reads the completed count every `intervalMs` until it reaches `target` and returns when
 * the read that saw it started: its snapshot was taken then, so the jobs had completed by then.
 */
async function completedAt(
  workers: RoleProcess[],
  count: () => Promise<number>,
  target: number,
  intervalMs: number,
  timeoutMs: number,
): Promise<number> {
  return pollUntil(
    `${target} completed jobs`,
    async () => {
      const readAt = epochNow();
      return (await count()) >= target ? readAt : undefined;
    },
    {
      timeoutMs,
      intervalMs,
      abortIf: () => workers.map((worker) => worker.process.exitStatus && worker.process.describe()).find(Boolean),
    },
  );
}
