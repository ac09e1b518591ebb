import { ConnectError, Code } from "@connectrpc/connect";
import { JobState, PhaseState } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import { beforeAll, describe, expect, it } from "vitest";
import { grpcQueueClient, postJson } from "./support/clients.js";
import { startTestServer } from "./support/server.js";
import type { JobwireServer } from "@jobwire/server";

let server: JobwireServer;
let client: ReturnType<typeof grpcQueueClient>;

beforeAll(async () => {
  server = await startTestServer();
  client = grpcQueueClient(server.url);
});

describe("QueueService over gRPC", () => {
  it("enqueues a job that GetJob returns with its payload, phases and defaults", async () => {
    const { job } = await client.enqueue({
      job: { queue: "emails", kind: "send-welcome", payload: { kind: { case: "stringValue", value: "hi" } }, phases: ["render", "send"] },
    });
    expect(job?.state).toBe(JobState.PENDING);
    const { job: got } = await client.getJob({ id: job!.id });
    expect(got?.queue).toBe("emails");
    expect(got?.owner).toBe("local");
    expect(got?.retryPolicy?.maxAttempts).toBe(25);
    expect(got?.phases.map((p) => [p.name, p.state])).toEqual([
      ["render", PhaseState.PENDING],
      ["send", PhaseState.PENDING],
    ]);
  });

  it("answers NOT_FOUND for an unknown job id", async () => {
    const error = await client.getJob({ id: "01930000-0000-7000-8000-000000000000" }).catch((e: unknown) => e);
    expect(ConnectError.from(error).code).toBe(Code.NotFound);
  });
});

describe("QueueService over Connect JSON (plain fetch)", () => {
  it("enqueues, gets and cancels a job with curl-style JSON", async () => {
    const enqueued = await postJson(server.url, "jobwire.v1.QueueService/Enqueue", {
      job: { queue: "emails", kind: "send", payload: { to: "ada@example.com" }, delay: "3600s" },
    });
    expect(enqueued.status).toBe(200);
    expect(enqueued.body.job.state).toBe("JOB_STATE_SCHEDULED");
    const got = await postJson(server.url, "jobwire.v1.QueueService/GetJob", { id: enqueued.body.job.id });
    expect(got.body.job.payload).toEqual({ to: "ada@example.com" });
    const cancelled = await postJson(server.url, "jobwire.v1.QueueService/CancelJob", { id: enqueued.body.job.id, reason: "not needed" });
    expect(cancelled.body.job.state).toBe("JOB_STATE_CANCELLED");
    expect(cancelled.body.job.cancelReason).toBe("not needed");
  });
});

describe("errors", () => {
  it("attach a google.rpc.BadRequest field violation naming the field to INVALID_ARGUMENT", async () => {
    const { BadRequestSchema } = await import("@jobwire/sdk/gen/google/rpc/error_details_pb");
    const error = ConnectError.from(await client.enqueue({ job: { queue: "ok", kind: "" } }).catch((e: unknown) => e));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("job.kind is required");
    const [details] = error.findDetails(BadRequestSchema);
    expect(details?.fieldViolations.map((v) => [v.field, v.description])).toEqual([["job.kind", "is required"]]);
  });
});
