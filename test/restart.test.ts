import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { postJson } from "./support/clients.js";
import { createTestDatabase } from "./support/database.js";
import { embeddedDataDir, portIsFree, processExists, startServerProcess, type ServerProcess } from "./support/server-process.js";

// These tests run the server the way `npm start` does with no DATABASE_URL: it starts its
// own embedded Postgres in a data folder, and the jobs must survive the server process.

async function enqueue(server: ServerProcess): Promise<string> {
  const answer = await postJson(server.url, "jobwire.v1.QueueService/Enqueue", {
    job: { queue: "restarts", kind: "survive", payload: { note: "written before the restart" } },
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  expect(answer.body.job.state).toBe("JOB_STATE_PENDING");
  return answer.body.job.id as string;
}

async function getJob(server: ServerProcess, id: string) {
  const answer = await postJson(server.url, "jobwire.v1.QueueService/GetJob", { id });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body.job as Record<string, any>;
}

describe("the server with its embedded Postgres (no DATABASE_URL)", () => {
  it("stops Postgres on SIGTERM with exit code 0, and a restart on the same data folder still has the job", async () => {
    const data = await embeddedDataDir();
    const first = await startServerProcess({ database: data.database });
    expect(first.logs.find((line) => line.msg === "jobwire serving gRPC, gRPC-Web and Connect")?.embeddedPostgres).toBe(true);
    const postgresPid = await data.postmasterPid();
    expect(postgresPid).toBeDefined();
    const id = await enqueue(first);

    expect(await first.stop("SIGTERM")).toBe(0);
    expect(first.logs.map((line) => line.msg)).toContain("jobwire stopped");
    // The embedded Postgres went with the server: pid file removed, process gone, port free.
    expect(existsSync(join(data.dataDir, "postmaster.pid"))).toBe(false);
    expect(processExists(postgresPid!)).toBe(false);
    expect(await portIsFree(data.port)).toBe(true);

    const second = await startServerProcess({ database: data.database });
    expect(second.logs.map((line) => line.msg)).not.toContain("initialising embedded postgres data folder");
    const job = await getJob(second, id);
    expect(job.id).toBe(id);
    expect(job.state).toBe("JOB_STATE_PENDING");
    expect(job.payload).toEqual({ note: "written before the restart" });
    expect(await second.stop("SIGTERM")).toBe(0);
    expect(await portIsFree(data.port)).toBe(true);
  });

  it("starts again on the data folder after a SIGKILL, stopping the Postgres the killed server left running", async () => {
    const data = await embeddedDataDir();
    const first = await startServerProcess({ database: data.database });
    const id = await enqueue(first);
    const orphanPid = await data.postmasterPid();
    expect(orphanPid).toBeDefined();

    const killed = await first.kill();
    expect(killed.signal).toBe("SIGKILL");
    // SIGKILL runs no cleanup: the server's Postgres child is still running on the folder.
    expect(processExists(orphanPid!)).toBe(true);
    expect(await data.postmasterPid()).toBe(orphanPid);
    expect(await portIsFree(data.port)).toBe(false);

    const second = await startServerProcess({ database: data.database });
    expect(second.logs.map((line) => line.msg)).toContain("stopped a Postgres left running by an earlier server");
    expect(processExists(orphanPid!)).toBe(false);
    const newPid = await data.postmasterPid();
    expect(newPid).toBeDefined();
    expect(newPid).not.toBe(orphanPid);
    const job = await getJob(second, id);
    expect(job.id).toBe(id);
    expect(job.state).toBe("JOB_STATE_PENDING");

    expect(await second.stop("SIGTERM")).toBe(0);
    expect(existsSync(join(data.dataDir, "postmaster.pid"))).toBe(false);
    expect(await portIsFree(data.port)).toBe(true);
  });
  it("refuses to start on a data folder a running server uses, and leaves that server and its Postgres alone", async () => {
    const data = await embeddedDataDir();
    const first = await startServerProcess({ database: data.database });
    const id = await enqueue(first);
    const postgresPid = await data.postmasterPid();

    // A second `npm start` on the same folder (another terminal, say).
    const second = startServerProcess({ database: data.database });
    await expect(second).rejects.toThrow(/another server is running on the embedded Postgres in .*stop that one first/s);
    expect(await data.postmasterPid()).toBe(postgresPid);
    expect(processExists(postgresPid!)).toBe(true);
    expect((await getJob(first, id)).id).toBe(id);
    expect(await first.stop("SIGTERM")).toBe(0);
  });
});

describe("the server on a port already taken", () => {
  it("exits on a port already taken without its loops running on a closed pool", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as { port: number }).port;
    const failure = await startServerProcess({ database: { databaseUrl: await createTestDatabase() }, env: { JOBWIRE_PORT: String(port) } }).then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failure?.message).toMatch(/EADDRINUSE/);
    expect(failure?.message).not.toMatch(/Cannot use a pool after calling end/);
  });
});
