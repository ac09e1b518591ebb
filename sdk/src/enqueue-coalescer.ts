import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { JobSpec } from "./gen/jobwire/v1/job_pb.js";
import type { EnqueueResponse, QueueService } from "./gen/jobwire/v1/queue_service_pb.js";

interface Pending {
  job: JobSpec;
  resolve(response: EnqueueResponse): void;
  reject(error: unknown): void;
}

/**
 * Sends single enqueues. One made while fewer than `maxInFlight` calls are out leaves at
 * once as an Enqueue call; those made while that many are out wait, and all that wait when
 * a call ends leave together in one EnqueueJobs call, each answered on its own (a refused
 * job rejects with the code and message Enqueue would have given it). Under load one
 * request, one server statement and one commit serve many jobs; a lone enqueue waits for
 * nothing. Jobs with parents always go alone (EnqueueJobs does not take them), and so does
 * everything against a server that does not know EnqueueJobs yet. A call the server finds
 * too large (RESOURCE_EXHAUSTED) is sent again in halves, and later calls are smaller.
 */
export class EnqueueCoalescer {
  #waiting: Pending[] = [];
  #inFlight = 0;
  /** Most jobs in one EnqueueJobs call: halved each time the server finds a call too large. */
  #jobsPerCall: number;
  /** Cleared once the server answered EnqueueJobs with UNIMPLEMENTED (an older server). */
  #serverCoalesces = true;

  constructor(
    private readonly client: Client<typeof QueueService>,
    private readonly maxInFlight = 2,
    maxJobsPerCall = 100,
  ) {
    this.#jobsPerCall = maxJobsPerCall;
  }

  /** Enqueues `job` in the next call that can take it. */
  enqueue(job: JobSpec): Promise<EnqueueResponse> {
    if (job.dependsOn.length > 0) return this.client.enqueue({ job });
    return new Promise((resolve, reject) => {
      this.#waiting.push({ job, resolve, reject });
      this.#startCalls();
    });
  }

  #startCalls(): void {
    while (this.#inFlight < this.maxInFlight && this.#waiting.length > 0) {
      const group = this.#waiting.splice(0, this.#serverCoalesces ? this.#jobsPerCall : 1);
      this.#inFlight++;
      this.#send(group).finally(() => {
        this.#inFlight--;
        this.#startCalls();
      });
    }
  }

  async #send(group: Pending[]): Promise<void> {
    if (group.length === 1) {
      const [pending] = group as [Pending];
      await this.client.enqueue({ job: pending.job }).then(pending.resolve, pending.reject);
      return;
    }
    let results;
    try {
      ({ results } = await this.client.enqueueJobs({ jobs: group.map((pending) => pending.job) }));
    } catch (error) {
      const code = ConnectError.from(error).code;
      if (code === Code.Unimplemented) {
        this.#serverCoalesces = false;
        await Promise.all(group.map((pending) => this.#send([pending])));
      } else if (code === Code.ResourceExhausted) {
        // More jobs (or bytes) than the server takes in one call: send halves, and no more
        // than that from now on.
        this.#jobsPerCall = Math.max(1, Math.floor(group.length / 2));
        const half = Math.ceil(group.length / 2);
        await Promise.all([this.#send(group.slice(0, half)), this.#send(group.slice(half))]);
      } else {
        for (const pending of group) pending.reject(error);
      }
      return;
    }
    group.forEach((pending, index) => {
      const result = results[index]?.result;
      if (result?.case === "enqueued") pending.resolve(result.value);
      else if (result?.case === "refused") pending.reject(new ConnectError(result.value.message, result.value.code as Code));
      else pending.reject(new ConnectError(`EnqueueJobs answered ${results.length} of ${group.length} jobs`, Code.Internal));
    });
  }
}
