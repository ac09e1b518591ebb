import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { createJobwireClient, Role, Worker } from "@jobwire/sdk";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.js";
import { failureOf } from "./support/failure-of.js";
import { freePort } from "./support/free-port.js";
import { startServerProcess } from "./support/server-process.js";

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** `npm run create-api-key` against `databaseUrl`: the key on stdout, anything else on stderr. */
async function createKeyWithCli(databaseUrl: string, ...args: string[]): Promise<{ key: string; stderr: string }> {
  const { stdout, stderr } = await run(process.execPath, ["--conditions=source", "--import", "tsx", join(repo, "server/src/auth/create-key-command.ts"), ...args], {
    cwd: join(repo, "server"),
    env: { ...process.env, DATABASE_URL: databaseUrl, JOBWIRE_LOG_LEVEL: "trace" },
  });
  return { key: stdout.trim(), stderr };
}

const randomSecret = () => randomBytes(24).toString("base64url");

describe("secrets", () => {
  it("API keys, webhook secrets and the DATABASE_URL password appear in no log line and no error message", async () => {
    const databaseUrl = await createTestDatabase();
    const password = decodeURIComponent(new URL(databaseUrl).password);
    expect(password.length).toBeGreaterThan(0);
    const closedPort = await freePort();
    const server = await startServerProcess({
      database: { databaseUrl },
      // Authentication on, and every log line the server can write.
      env: { JOBWIRE_AUTH: undefined, JOBWIRE_LOG_LEVEL: "trace", JOBWIRE_WEBHOOK_ALLOW_CIDRS: "127.0.0.1/32", JOBWIRE_WEBHOOK_MAX_ATTEMPTS: "1" },
    });
    const cli = await createKeyWithCli(databaseUrl, "--role", "admin", "--principal", "ops");
    const adminKey = cli.key;
    const secrets = new Set<string>([password, adminKey]);
    const errors: string[] = [];
    const refused = async (call: Promise<unknown>, code: Code) => {
      const error = await failureOf(call);
      expect(error.code).toBe(code);
      errors.push(error.message);
    };

    const admin = createJobwireClient({ baseUrl: server.url, apiKey: adminKey });
    // Webhook secrets: a named one used by a job's target, and a queue subscription's.
    const named = `whsec_${Buffer.from(randomSecret()).toString("base64")}`;
    const subscription = `subscription-${randomSecret()}`;
    secrets.add(named).add(subscription);
    const target = `http://127.0.0.1:${closedPort}/hook`;
    await admin.putWebhookSecret("billing", named);
    await admin.raw.createWebhookSubscription({ queue: "billing", url: target, secret: subscription });
    await admin.enqueue("billing", "invoice", { n: 1 }, { webhooks: [{ url: target, secretName: "billing" }] });
    const tooShort = `short${randomBytes(2).toString("hex")}`;
    secrets.add(tooShort);
    await refused(admin.putWebhookSecret("bad", tooShort), Code.InvalidArgument);

    // A producer key made over the API, used, revoked, and used again.
    const { secret: producerKey, apiKey } = await admin.admin.createApiKey({ principal: "shop", role: Role.PRODUCER });
    secrets.add(producerKey);
    const producer = createJobwireClient({ baseUrl: server.url, apiKey: producerKey });
    await producer.enqueue("orders", "ship");
    await refused(producer.raw.updateQueue({ name: "orders", defaults: {} }), Code.PermissionDenied);
    await admin.admin.revokeApiKey({ id: apiKey!.id });
    await refused(producer.enqueue("orders", "ship"), Code.Unauthenticated);

    // Keys that are not: unknown, a real id with a wrong secret, garbage, another scheme.
    const unknown = `jw_${"q".repeat(12)}_${randomBytes(32).toString("base64url")}`;
    const wrongSecret = `jw_${adminKey.split("_")[1]}_${randomBytes(32).toString("base64url")}`;
    const garbage = `not-a-key-${randomSecret()}`;
    const basicPassword = randomSecret();
    secrets.add(unknown).add(wrongSecret).add(garbage).add(basicPassword);
    for (const key of [unknown, wrongSecret, garbage]) {
      await refused(createJobwireClient({ baseUrl: server.url, apiKey: key }).listJobs(), Code.Unauthenticated);
      const sse = await fetch(`${server.url}/v1/events`, { headers: { authorization: `Bearer ${key}` } });
      expect(sse.status).toBe(401);
      errors.push(await sse.text());
    }
    const basic = await fetch(`${server.url}/jobwire.v1.QueueService/ListJobs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from(`ops:${basicPassword}`).toString("base64")}` },
      body: "{}",
    });
    expect(basic.status).toBe(401);
    errors.push(await basic.text());

    // A worker whose key is the admin's with its last character changed.
    const altered = adminKey.replace(/.$/, (last) => (last === "A" ? "B" : "A"));
    secrets.add(altered);
    const worker = new Worker({ baseUrl: server.url, apiKey: altered, queues: ["billing"], handlers: { invoice: async () => {} } });
    await refused(worker.start(), Code.Unauthenticated);

    // Every path ran: the refusals were logged, and the deliveries failed (connection refused).
    await server.waitForLog((line) => line.msg === "refused a request" && String(line.reason).includes("is revoked"));
    await server.waitForLog((line) => line.msg === "webhook delivery failed");
    expect(await server.stop()).toBe(0);

    const output = server.output() + cli.stderr;
    expect(server.logs.filter((line) => line.msg === "refused a request").length).toBeGreaterThanOrEqual(8);
    for (const secret of secrets) {
      const parts = [secret, ...secret.split("_").filter((part) => part.length >= 16)];
      for (const part of parts) {
        expect(output.includes(part), `a secret (${part.slice(0, 4)}…) appears in the server's output`).toBe(false);
        for (const message of errors) expect(message.includes(part), `a secret appears in the error ${message}`).toBe(false);
      }
    }
    expect(errors.every((message) => message.length > 0)).toBe(true);
  });

  it("a DATABASE_URL whose password is refused fails the start without printing the password", async () => {
    const url = new URL(await createTestDatabase());
    const wrong = `Wrong-${randomSecret()}`;
    url.password = wrong;
    const failure = await startServerProcess({ database: { databaseUrl: url.toString() }, readyTimeoutMs: 30_000 }).then(
      () => "started",
      (error: unknown) => String(error),
    );
    expect(failure).toContain("password authentication failed");
    expect(failure).not.toContain(wrong);
  });
});
