import { readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { embeddedDataDir, startServerProcess, type ServerProcess } from "./support/server-process.js";

const bootstrapMessage = "created the bootstrap admin API key: it is printed only this once and kept in the file, readable by its owner only";

/** A Connect-JSON call as the README's curl lines make it, with `key` as the bearer token. */
async function curl(server: ServerProcess, method: string, body: unknown, key?: string) {
  const response = await fetch(`${server.url}/jobwire.v1.QueueService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

describe("secure by default", () => {
  it("npm start on a fresh embedded database creates an admin key, prints it once, keeps it in a file only its owner can read, and the README quickstart works with it", async () => {
    const data = await embeddedDataDir();
    // JOBWIRE_AUTH unset: the server's own default, authentication on.
    const first = await startServerProcess({ database: data.database, env: { JOBWIRE_AUTH: undefined }, launcher: "npm-start" });
    const line = await first.waitForLog(bootstrapMessage);
    const key = line.apiKey as string;
    expect(key).toMatch(/^jw_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    // Everything after the prefix: the secret may itself contain "_".
    const secret = key.slice("jw_".length + 12 + 1);
    const file = join(dirname(data.dataDir), "admin-key");
    expect(line.file).toBe(file);
    expect(await readFile(file, "utf8")).toBe(`${key}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(occurrences(first.output(), secret)).toBe(1);

    // The README's quickstart, with the key from the file.
    const fromFile = (await readFile(file, "utf8")).trim();
    expect((await curl(first, "Enqueue", { job: { queue: "emails", kind: "send-welcome" } })).status).toBe(401);
    const enqueued = await curl(first, "Enqueue", { job: { queue: "emails", kind: "send-welcome", payload: { to: "ada@example.com" }, phases: ["render", "send"] } }, fromFile);
    expect(enqueued.status, JSON.stringify(enqueued.body)).toBe(200);
    expect(enqueued.body.job.owner).toBe("admin");
    const id = enqueued.body.job.id as string;
    expect((await curl(first, "GetJob", { id }, fromFile)).body.job.id).toBe(id);
    expect((await curl(first, "CancelJob", { id, reason: "changed my mind" }, fromFile)).body.job.state).toBe("JOB_STATE_CANCELLED");
    expect((await curl(first, "ListJobs", { queues: ["emails"], pageSize: 10 }, fromFile)).body.jobs).toHaveLength(1);
    const sse = await fetch(`${first.url}/v1/events?queue=emails&from=oldest`, { headers: { authorization: `Bearer ${fromFile}` }, signal: AbortSignal.timeout(15_000) });
    expect(sse.status).toBe(200);
    await sse.body?.cancel();
    // Ctrl-C in the terminal: SIGINT to npm and the server together.
    await first.stop("SIGINT");
    expect(first.logs.map((entry) => entry.msg)).toContain("jobwire stopped");

    // A restart finds the key: no new one, nothing printed, the file as it was.
    const second = await startServerProcess({ database: data.database, env: { JOBWIRE_AUTH: undefined } });
    expect(second.logs.some((entry) => entry.msg === bootstrapMessage || "apiKey" in entry)).toBe(false);
    expect(second.output()).not.toContain(secret);
    expect(await readFile(file, "utf8")).toBe(`${key}\n`);
    expect((await curl(second, "GetJob", { id }, fromFile)).status).toBe(200);
    expect(await second.stop()).toBe(0);
  });

  it("on a database of its own (DATABASE_URL) creates no key and says how to make one", async () => {
    const server = await startServerProcess({ database: { databaseUrl: await createTestDatabase() }, env: { JOBWIRE_AUTH: undefined } });
    expect(server.logs.some((entry) => entry.msg === bootstrapMessage)).toBe(false);
    const warning = server.logs.find((entry) => typeof entry.msg === "string" && entry.msg.startsWith("no API key exists"));
    expect(warning?.msg).toContain("npm run create-api-key");
    expect(server.logs.find((entry) => entry.msg === "jobwire serving gRPC, gRPC-Web and Connect")?.auth).toBe("api-keys");
    expect((await curl(server, "ListJobs", {})).status).toBe(401);
    expect(await server.stop()).toBe(0);
  });

  it("JOBWIRE_AUTH=off serves without keys and warns loudly at startup", async () => {
    const server = await startServerProcess({ database: { databaseUrl: await createTestDatabase() }, env: { JOBWIRE_AUTH: "off" } });
    const warning = server.logs.find((entry) => typeof entry.msg === "string" && entry.msg.startsWith("AUTHENTICATION IS OFF"));
    expect(warning?.level).toBe(40);
    expect(server.logs.find((entry) => entry.msg === "jobwire serving gRPC, gRPC-Web and Connect")?.auth).toBe("off");
    const enqueued = await curl(server, "Enqueue", { job: { queue: "open", kind: "k" } });
    expect(enqueued.status).toBe(200);
    expect(enqueued.body.job.owner).toBe("local");
    expect(await server.stop()).toBe(0);
  });

  it("refuses to start on a JOBWIRE_AUTH that is neither on nor off", async () => {
    const failed = await startServerProcess({ database: { databaseUrl: await createTestDatabase() }, env: { JOBWIRE_AUTH: "maybe" }, readyTimeoutMs: 30_000 }).then(
      () => undefined,
      (error: unknown) => String(error),
    );
    expect(failed).toContain("JOBWIRE_AUTH must be on or off");
  });
});
