import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { toJson, type DescService } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createJobwireClient, Role, transportFor, type JobwireClient } from "@jobwire/sdk";
import { ListApiKeysResponseSchema } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { Health, HealthCheckResponse_ServingStatus } from "@jobwire/sdk/gen/grpc/health/v1/health_pb";
import { WorkerService } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { accessControl, authorizationTable, createLogger, type JobwireServer } from "@jobwire/server";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { ApiKeyAuthenticator, anonymousAdmin } from "../server/src/auth/authenticator.js";
import { authorizationMarkdown } from "../server/src/auth/authorization-doc.js";
import { LiveStreams } from "../server/src/auth/live-streams.js";
import { apiKeyOn, bearer, keyIdOf } from "./support/api-keys.js";
import { callWithEmptyRequest } from "./support/any-rpc.js";
import { postJson } from "./support/clients.js";
import { createTestDatabase } from "./support/database.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { withTimeout } from "./support/with-timeout.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const authOn = { auth: { enabled: true, bootstrapKeyFile: undefined } };

let databaseUrl: string;
let server: JobwireServer;
let adminKey: string;
let admin: JobwireClient;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  server = await startTestServer({ ...authOn, databaseUrl });
  adminKey = await apiKeyOn(server, { principal: "ops", role: "admin" });
  admin = createJobwireClient({ baseUrl: server.url, apiKey: adminKey });
});

/** Every (service, method) of the authorization table, for calls that must all behave alike. */
function everyRpc(): { service: DescService; method: DescService["methods"][number]; isPublic: boolean }[] {
  return [...authorizationTable.values()].flatMap(({ service, methods }) =>
    service.methods.map((method) => ({ service, method, isPublic: methods.get(method.name)?.allow === "public" })),
  );
}

describe("authentication", () => {
  it("refuses every RPC but health checks with UNAUTHENTICATED without a valid key, never echoing what was sent", async () => {
    const transport = transportFor({ baseUrl: server.url });
    const unknownKey = `jw_${"a".repeat(12)}_${"b".repeat(43)}`;
    const wrongSecret = `jw_${keyIdOf(adminKey)}_${"c".repeat(43)}`;
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "" },
      { authorization: "Bearer" },
      { authorization: "Basic b3BzOnNlY3JldA==" },
      { authorization: "Bearer not-a-key" },
      { authorization: bearer(unknownKey) },
      { authorization: bearer(wrongSecret) },
      { authorization: `${bearer(adminKey)} extra` },
    ];
    for (const { service, method, isPublic } of everyRpc()) {
      if (isPublic) continue;
      for (const headers of attempts) {
        const error = await callWithEmptyRequest(transport, service, method, headers);
        expect(error?.code, `${service.name}.${method.name} with ${JSON.stringify(headers)}`).toBe(Code.Unauthenticated);
        expect(error!.rawMessage).not.toContain(keyIdOf(adminKey) + "_");
        expect(error!.rawMessage).not.toContain("b".repeat(43));
        expect(error!.rawMessage).not.toContain("c".repeat(43));
      }
    }
    // The same RPCs pass the gate with the key (they may still refuse the empty request).
    const withKey = await callWithEmptyRequest(transport, everyRpc()[0]!.service, everyRpc()[0]!.method, { authorization: bearer(adminKey) });
    expect(withKey?.code).not.toBe(Code.Unauthenticated);
  });

  it("keeps health checks open: grpc.health.v1, /healthz and /readyz answer without a key", async () => {
    const health = createClient(Health, transportFor({ baseUrl: server.url }));
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it("refuses a revoked key from the next request on, on every replica, with nothing cached", async () => {
    const other = await startTestServer({ ...authOn, databaseUrl });
    const key = await apiKeyOn(server, { principal: "soon-gone", role: "reader" });
    const onOther = createJobwireClient({ baseUrl: other.url, apiKey: key });
    // Used on both replicas first, so any cache would hold it now.
    await onOther.listJobs();
    await createJobwireClient({ baseUrl: server.url, apiKey: key }).listJobs();

    const { apiKey } = await admin.admin.revokeApiKey({ id: keyIdOf(key) });
    expect(apiKey?.revokedAt).toBeDefined();
    expect(apiKey?.revokedBy).toBe("ops");

    const refused = await failureOf(onOther.listJobs());
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.rawMessage).toBe(`API key ${keyIdOf(key)} is revoked`);
    // Revoking again changes nothing.
    const again = await admin.admin.revokeApiKey({ id: keyIdOf(key) });
    expect(again.apiKey?.revokedAt).toEqual(apiKey?.revokedAt);
    expect((await failureOf(admin.admin.revokeApiKey({ id: "zzzzzzzzzzzz" }))).code).toBe(Code.NotFound);
    await other.close();
  });

  it("ends the open streams of a revoked key on every replica (LeaseJobs, StreamEvents, SSE), and of a key when it expires", async () => {
    const other = await startTestServer({ ...authOn, databaseUrl, fallbackPollMs: 100 });
    const reader = await apiKeyOn(server, { principal: "watcher", role: "reader" });
    const worker = await apiKeyOn(server, { principal: "runner", role: "worker", queues: ["revoked-work"] });
    const abort = new AbortController();
    onTestFinished(() => abort.abort());
    /** Reads a stream to its end; resolves with how it ended. */
    const ending = (stream: AsyncIterable<unknown>) =>
      (async () => {
        for await (const _ of stream) {
          // reading on
        }
        return "ended without an error";
      })().catch((error: unknown) => ConnectError.from(error).rawMessage);
    const onOther = (key: string) => createJobwireClient({ baseUrl: other.url, apiKey: key });
    const events = onOther(reader).events.streamEvents({}, { signal: abort.signal });
    const workerStream = createClient(WorkerService, transportFor({ baseUrl: other.url, apiKey: worker })).leaseJobs({ queues: ["revoked-work"], capacity: 1 }, { signal: abort.signal });
    const [eventsFirst, leaseFirst] = [events[Symbol.asyncIterator](), workerStream[Symbol.asyncIterator]()];
    await eventsFirst.next();
    await leaseFirst.next();
    const sse = await fetch(`${other.url}/v1/events`, { headers: { authorization: bearer(reader) }, signal: abort.signal });
    expect(sse.status).toBe(200);
    const sseEnded = (async () => {
      for await (const _ of sse.body!) {
        // reading on
      }
      return "ended";
    })();

    await admin.admin.revokeApiKey({ id: keyIdOf(reader) });
    await admin.admin.revokeApiKey({ id: keyIdOf(worker) });
    const [eventsEnd, leasesEnd, sseEnd] = await withTimeout(
      Promise.all([ending({ [Symbol.asyncIterator]: () => eventsFirst }), ending({ [Symbol.asyncIterator]: () => leaseFirst }), sseEnded]),
      10_000,
      "the streams of the revoked keys to end",
    );
    expect(eventsEnd).toBe(`API key ${keyIdOf(reader)} is revoked`);
    expect(leasesEnd).toBe(`API key ${keyIdOf(worker)} is revoked`);
    expect(sseEnd).toBe("ended");

    const expiring = await apiKeyOn(server, { principal: "brief", role: "reader", expiresAt: new Date(Date.now() + 3_600_000) });
    const expiringStream = onOther(expiring).events.streamEvents({}, { signal: abort.signal })[Symbol.asyncIterator]();
    await expiringStream.next();
    await server.db.pool.query(
      "UPDATE api_key SET created_at = clock_timestamp() - interval '2 hours', expires_at = clock_timestamp() - interval '1 second' WHERE id = $1",
      [keyIdOf(expiring)],
    );
    const expiredEnd = await withTimeout(ending({ [Symbol.asyncIterator]: () => expiringStream }), 10_000, "the stream of the expired key to end");
    expect(expiredEnd).toBe(`API key ${keyIdOf(expiring)} has expired`);
    await other.close();
  });

  it("refuses an expired key, judged by the database clock, and refuses to create one already expired", async () => {
    const { secret, apiKey } = await admin.admin.createApiKey({
      principal: "temp",
      role: Role.READER,
      expiresAt: timestampFromDate(new Date(Date.now() + 3_600_000)),
    });
    const temp = createJobwireClient({ baseUrl: server.url, apiKey: secret });
    await temp.listJobs();
    await server.db.pool.query(
      "UPDATE api_key SET created_at = clock_timestamp() - interval '2 hours', expires_at = clock_timestamp() - interval '1 second' WHERE id = $1",
      [apiKey!.id],
    );
    const refused = await failureOf(temp.listJobs());
    expect(refused.code).toBe(Code.Unauthenticated);
    expect(refused.rawMessage).toBe(`API key ${apiKey!.id} has expired`);

    const past = await failureOf(admin.admin.createApiKey({ principal: "late", role: Role.READER, expiresAt: timestampFromDate(new Date(Date.now() - 1000)) }));
    expect(past.code).toBe(Code.InvalidArgument);
    expect(past.rawMessage).toBe("expires_at must be in the future");
  });
});

describe("API keys", () => {
  it("are shown once, stored as a SHA-256 of their secret only, and listed without secrets", async () => {
    const created = await admin.admin.createApiKey({ principal: "billing", role: Role.PRODUCER, description: "billing service" });
    expect(created.secret).toMatch(/^jw_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    const [, id, secret] = /^jw_([a-z0-9]{12})_(.+)$/.exec(created.secret)!;
    expect(created.apiKey).toMatchObject({ id, principal: "billing", role: Role.PRODUCER, description: "billing service", createdBy: "ops" });

    const stored = await server.db.pool.query<{ row: string; hash: Buffer }>("SELECT row_to_json(k)::text AS row, secret_hash AS hash FROM api_key k WHERE id = $1", [id]);
    expect(stored.rows[0]!.hash.equals(createHash("sha256").update(secret!).digest())).toBe(true);
    expect(stored.rows[0]!.row).not.toContain(secret);

    const listing = await admin.admin.listApiKeys({ principal: "billing" });
    expect(listing.apiKeys.map((key) => key.id)).toEqual([id]);
    const wire = JSON.stringify(toJson(ListApiKeysResponseSchema, listing));
    expect(wire).not.toContain(secret);
    expect(wire).toContain(id);

    // The key works, as a producer.
    const billing = createJobwireClient({ baseUrl: server.url, apiKey: created.secret });
    expect((await billing.enqueue("invoices", "render")).owner).toBe("billing");
  });

  it("list newest first, a page at a time, revoked ones only when asked", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(keyIdOf(await apiKeyOn(server, { principal: "paged", role: "reader" })));
    await admin.admin.revokeApiKey({ id: ids[0]! });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await admin.admin.listApiKeys({ principal: "paged", includeRevoked: true, pageSize: 2, pageToken });
      seen.push(...page.apiKeys.map((key) => key.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual([...ids].reverse());
    const active = await admin.admin.listApiKeys({ principal: "paged" });
    expect(active.apiKeys.map((key) => key.id)).toEqual(ids.slice(1).reverse());
  });

  it("CreateApiKey refuses bad input naming the field, and creates nothing", async () => {
    const before = (await server.db.pool.query("SELECT count(*)::int AS n FROM api_key")).rows[0].n;
    const cases: [object, string][] = [
      [{ role: Role.ADMIN }, "principal is required"],
      [{ principal: "has space", role: Role.ADMIN }, "principal must be"],
      [{ principal: "x" }, "role is required"],
      [{ principal: "x", role: 99 }, "role must be"],
      [{ principal: "x", role: Role.WORKER }, "queues must name at least one queue"],
      [{ principal: "x", role: Role.PRODUCER, queues: ["q"] }, "queues must be empty unless the role is WORKER"],
      [{ principal: "x", role: Role.WORKER, queues: ["bad queue"] }, "queues[0] must be"],
      [{ principal: "x", role: Role.READER, description: "d".repeat(257) }, "description must be at most 256 characters"],
    ];
    for (const [request, message] of cases) {
      const error = await failureOf(admin.admin.createApiKey(request));
      expect(error.code, JSON.stringify(request)).toBe(Code.InvalidArgument);
      expect(error.rawMessage.startsWith(message), error.rawMessage).toBe(true);
    }
    expect((await failureOf(admin.admin.revokeApiKey({ id: "NOT-AN-ID" }))).code).toBe(Code.InvalidArgument);
    expect((await server.db.pool.query("SELECT count(*)::int AS n FROM api_key")).rows[0].n).toBe(before);
  });
});

describe("clients send the key", () => {
  it("as gRPC metadata from @grpc/grpc-js", async () => {
    const definition = protoLoader.loadSync("jobwire/v1/queue_service.proto", { includeDirs: [join(repo, "proto")], longs: String, enums: String, defaults: true, oneofs: true });
    const loaded = grpc.loadPackageDefinition(definition) as any;
    const queue = new loaded.jobwire.v1.QueueService(new URL(server.url).host, grpc.credentials.createInsecure());
    const call = (metadata: grpc.Metadata) =>
      new Promise<{ error: grpc.ServiceError | null; response?: any }>((resolve) =>
        queue.Enqueue({ job: { queue: "grpc-js", kind: "k" } }, metadata, { deadline: Date.now() + 10_000 }, (error: grpc.ServiceError | null, response?: any) =>
          resolve({ error, response }),
        ),
      );
    const withKey = new grpc.Metadata();
    withKey.set("authorization", bearer(adminKey));
    const ok = await call(withKey);
    expect(ok.error).toBeNull();
    expect(ok.response.job.owner).toBe("ops");
    const none = await call(new grpc.Metadata());
    expect(none.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    const readerMetadata = new grpc.Metadata();
    readerMetadata.set("authorization", bearer(await apiKeyOn(server, { principal: "grpc-reader", role: "reader" })));
    const wrongRole = await call(readerMetadata);
    expect(wrongRole.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    queue.close();
  });

  it("as an HTTP header with Connect JSON, as curl does", async () => {
    const enqueue = { job: { queue: "curl", kind: "k", payload: { n: 1 } } };
    const none = await postJson(server.url, "jobwire.v1.QueueService/Enqueue", enqueue);
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ code: "unauthenticated" });
    const response = await fetch(`${server.url}/jobwire.v1.QueueService/Enqueue`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: bearer(adminKey) },
      body: JSON.stringify(enqueue),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as any).job.owner).toBe("ops");
  });

  it("from the SDK over Connect (HTTP/1.1) and gRPC alike", async () => {
    const connect = createJobwireClient({ baseUrl: server.url, apiKey: adminKey, protocol: "connect" });
    expect((await connect.enqueue("sdk", "k")).owner).toBe("ops");
    expect((await failureOf(createJobwireClient({ baseUrl: server.url, protocol: "connect" }).listJobs())).code).toBe(Code.Unauthenticated);
  });
});

describe("the authorization table", () => {
  it("has an entry for every method of every service in the contract", async () => {
    const genRoot = join(repo, "sdk/src/gen");
    const files = (await readdir(genRoot, { recursive: true })).filter((file) => file.endsWith("_pb.ts"));
    const services: DescService[] = [];
    for (const file of files) {
      const module = (await import(pathToFileURL(join(genRoot, file)).href)) as Record<string, unknown>;
      for (const value of Object.values(module)) {
        if ((value as DescService | null)?.kind === "service") services.push(value as DescService);
      }
    }
    expect(services.map((service) => service.typeName)).toContain("jobwire.v1.QueueService");
    const missing = services.flatMap((service) =>
      service.methods.filter((method) => !authorizationTable.get(service.typeName)?.methods.has(method.name)).map((method) => `${service.typeName}/${method.name}`),
    );
    expect(missing, "add these RPCs to server/src/auth/authorization-table.ts").toEqual([]);
  });

  it("refuses an RPC that is missing from it, even to an admin and with authentication off", async () => {
    const log = createLogger("silent");
    for (const authenticator of [new ApiKeyAuthenticator(server.db.pool), anonymousAdmin("local")]) {
      const access = accessControl({ authenticator, db: server.db.pool, liveStreams: new LiveStreams(server.db.pool, log), log });
      const error = await failureOf(access.authorize("jobwire.v1.QueueService", "PurgeEverything", bearer(adminKey)));
      expect(error.code).toBe(Code.PermissionDenied);
      expect(error.rawMessage).toBe("QueueService.PurgeEverything is not in the authorization table");
      expect(await access.authorize("jobwire.v1.QueueService", "ListJobs", bearer(adminKey))).toMatchObject({ role: "admin" });
    }
  });

  it("gives admin every RPC and is what docs/security.md shows", async () => {
    for (const { service, methods } of authorizationTable.values()) {
      for (const [name, rule] of methods) {
        if (rule.allow !== "public") expect(rule.allow, `${service.name}.${name}`).toContain("admin");
      }
    }
    const docs = await readFile(join(repo, "docs/security.md"), "utf8");
    expect(docs, `docs/security.md must contain this table:\n${authorizationMarkdown()}`).toContain(authorizationMarkdown());
  });
});
