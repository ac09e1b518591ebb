import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createJobwireClient, JobState, Worker } from "@jobwire/sdk";
import { configFromEnv, createLogger, defaultServerConfig, startJobwire, type JobwireServer } from "@jobwire/server";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { apiKeyOn, bearer } from "./support/api-keys.js";
import { createTestDatabase } from "./support/database.js";
import { failureOf } from "./support/failure-of.js";
import { startTestServer } from "./support/server.js";
import { waitFor } from "./support/wait-for.js";
import { withTimeout } from "./support/with-timeout.js";

const run = promisify(execFile);

/** PEM files made for this run with the `openssl` command line (Node cannot make certificates). */
interface Certificates {
  dir: string;
  /** A self-signed server certificate for 127.0.0.1 and localhost, and its key. */
  serverCert: string;
  serverKey: string;
  /** A self-signed CA that signs client certificates, one client certificate it signed, and one it did not. */
  clientCa: string;
  clientCert: string;
  clientKey: string;
  strangerCert: string;
  strangerKey: string;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? "the openssl command is needed to make test certificates: apt-get install openssl" : String(error));
  }
}

async function makeCertificates(): Promise<Certificates> {
  const dir = await mkdtemp(join(tmpdir(), "jobwire-tls-"));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(dir, "req", "-x509", ...ec, "-keyout", "server.key", "-out", "server.crt", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost");
  await openssl(dir, "req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=jobwire test client CA");
  await openssl(dir, "req", ...ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=worker-1");
  await writeFile(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  await openssl(dir, "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.ext");
  await openssl(dir, "req", "-x509", ...ec, "-keyout", "stranger.key", "-out", "stranger.crt", "-days", "2", "-subj", "/CN=stranger", "-addext", "extendedKeyUsage=clientAuth");
  return {
    dir,
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCa: join(dir, "ca.crt"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
    strangerCert: join(dir, "stranger.crt"),
    strangerKey: join(dir, "stranger.key"),
  };
}

let certs: Certificates;
let ca: Buffer;
let server: JobwireServer;
let adminKey: string;

beforeAll(async () => {
  certs = await makeCertificates();
  ca = await readFile(certs.serverCert);
  server = await startTestServer({
    auth: { enabled: true, bootstrapKeyFile: undefined },
    tls: { certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: undefined },
  });
  adminKey = await apiKeyOn(server, { principal: "ops", role: "admin" });
});

afterAll(async () => {
  await rm(certs.dir, { recursive: true, force: true });
});

/** A GET over HTTPS with Node's own client, resolving with the status and body. */
function httpsGet(url: string, options: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ...options, agent: false, timeout: 10_000 }, (response) => {
      let body = "";
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      response.once("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.once("timeout", () => request.destroy(new Error("no answer within 10 s")));
    request.once("error", reject);
  });
}

/** The protocol ALPN settles on when a client offers only `protocols`. */
function negotiated(port: number, protocols: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca, ALPNProtocols: protocols, servername: "localhost" }, () => {
      resolve(socket.alpnProtocol ?? false);
      socket.end();
    });
    socket.once("error", reject);
  });
}

describe("TLS on the listening port", () => {
  it("serves gRPC over h2 and Connect, probes and SSE over HTTP/1.1, negotiated by ALPN", async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await negotiated(server.port, ["h2"])).toBe("h2");
    expect(await negotiated(server.port, ["http/1.1"])).toBe("http/1.1");

    const grpcClient = createJobwireClient({ baseUrl: server.url, apiKey: adminKey, tls: { ca } });
    const job = await grpcClient.enqueue("tls", "k", { over: "h2" });
    const connectClient = createJobwireClient({ baseUrl: server.url, apiKey: adminKey, tls: { ca }, protocol: "connect" });
    expect((await connectClient.getJob(job.id)).id).toBe(job.id);
    expect((await failureOf(createJobwireClient({ baseUrl: server.url, tls: { ca } }).getJob(job.id))).code).toBe(Code.Unauthenticated);

    expect((await httpsGet(`${server.url}/healthz`, { ca })).status).toBe(200);
    expect((await httpsGet(`${server.url}/readyz`, { ca })).status).toBe(200);
    const abort = new AbortController();
    onTestFinished(() => abort.abort());
    const sse = await new Promise<number>((resolve, reject) => {
      https
        .get(`${server.url}/v1/events?from=oldest`, { ca, headers: { authorization: bearer(adminKey) }, signal: abort.signal }, (response) => resolve(response.statusCode ?? 0))
        .once("error", reject);
    });
    expect(sse).toBe(200);
  });

  it("answers @grpc/grpc-js over TLS with the key as metadata", async () => {
    const definition = protoLoader.loadSync("jobwire/v1/queue_service.proto", { includeDirs: [join(import.meta.dirname, "../proto")], defaults: true, oneofs: true });
    const loaded = grpc.loadPackageDefinition(definition) as any;
    const client = new loaded.jobwire.v1.QueueService(`localhost:${server.port}`, grpc.credentials.createSsl(ca));
    onTestFinished(() => client.close());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", bearer(adminKey));
    const response = await new Promise<any>((resolve, reject) =>
      client.ListJobs({ queues: ["tls"] }, metadata, { deadline: Date.now() + 10_000 }, (error: Error | null, answer: any) => (error ? reject(error) : resolve(answer))),
    );
    expect(response.jobs.length).toBeGreaterThanOrEqual(0);
  });

  it("runs a job through an SDK Worker over TLS", async () => {
    const workerKey = await apiKeyOn(server, { principal: "tls-worker", role: "worker", queues: ["tls-work"] });
    const ran = Promise.withResolvers<unknown>();
    const worker = new Worker({ baseUrl: server.url, apiKey: workerKey, tls: { ca }, queues: ["tls-work"], handlers: { k: async (payload) => ran.resolve(payload) } });
    await worker.start();
    onTestFinished(() => worker.shutdown({ graceMs: 100 }).then(() => undefined));
    const client = createJobwireClient({ baseUrl: server.url, apiKey: adminKey, tls: { ca } });
    const job = await client.enqueue("tls-work", "k", { n: 7 });
    expect(await withTimeout(ran.promise, 15_000, "the handler")).toEqual({ n: 7 });
    await waitFor("the job to succeed", async () => (await client.getJob(job.id)).state === JobState.SUCCEEDED);
  });

  it("refuses clients that do not trust the certificate, and plain text on the TLS port", async () => {
    const untrusting = createJobwireClient({ baseUrl: server.url, apiKey: adminKey });
    const untrusted = await failureOf(untrusting.listJobs());
    expect(untrusted.rawMessage).toContain("self-signed certificate");
    const plain = await fetch(`http://127.0.0.1:${server.port}/healthz`).then(
      (response) => response.status,
      (error: unknown) => String(error),
    );
    expect(plain).not.toBe(200);
    // The server keeps serving.
    expect((await httpsGet(`${server.url}/healthz`, { ca })).status).toBe(200);
  });
});

describe("client certificates (JOBWIRE_TLS_CLIENT_CA)", () => {
  let mtls: JobwireServer;
  beforeAll(async () => {
    mtls = await startTestServer({ tls: { certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.clientCa } });
  });

  it("serves a client whose certificate the CA signed, and refuses one with none or another's", async () => {
    const clientCert = { ca, cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) };
    expect((await httpsGet(`${mtls.url}/healthz`, clientCert)).status).toBe(200);
    expect((await createJobwireClient({ baseUrl: mtls.url, tls: clientCert }).enqueue("mtls", "k")).queue).toBe("mtls");

    const stranger = { ca, cert: await readFile(certs.strangerCert), key: await readFile(certs.strangerKey) };
    for (const options of [{ ca }, stranger]) {
      const outcome = await httpsGet(`${mtls.url}/healthz`, options).then(
        (answer) => `answered ${answer.status}`,
        (error: unknown) => `failed: ${String(error)}`,
      );
      expect(outcome).toMatch(/^failed/);
      // The handshake fails (TLS 1.3 tells the client after its own side is done, so the
      // call may end as a closed stream rather than a handshake error).
      const refused = await failureOf(createJobwireClient({ baseUrl: mtls.url, tls: options }).listJobs());
      expect([Code.Internal, Code.Unavailable, Code.Canceled]).toContain(refused.code);
    }
    expect((await httpsGet(`${mtls.url}/healthz`, clientCert)).status).toBe(200);
  });
});

describe("TLS configuration", () => {
  it("takes certificate and key together, and a client CA only with them", () => {
    expect(configFromEnv({ JOBWIRE_TLS_CERT: "a.crt", JOBWIRE_TLS_KEY: "a.key" }).tls).toEqual({ certFile: "a.crt", keyFile: "a.key", clientCaFile: undefined });
    expect(() => configFromEnv({ JOBWIRE_TLS_CERT: "a.crt" })).toThrow("JOBWIRE_TLS_CERT and JOBWIRE_TLS_KEY must be set together");
    expect(() => configFromEnv({ JOBWIRE_TLS_CLIENT_CA: "ca.crt" })).toThrow("JOBWIRE_TLS_CLIENT_CA needs JOBWIRE_TLS_CERT and JOBWIRE_TLS_KEY");
    expect(configFromEnv({}).tls).toBeUndefined();
  });

  it("fails the start, naming the variable, on a file it cannot read or a key that does not fit", async () => {
    const config = { ...defaultServerConfig, port: 0, databaseUrl: await createTestDatabase(), logLevel: "silent" };
    const logger = createLogger("silent");
    const missing = await failureOf(
      startJobwire({ ...config, tls: { certFile: join(certs.dir, "nope.crt"), keyFile: certs.serverKey, clientCaFile: undefined } }, logger),
    );
    expect(missing.message).toContain("JOBWIRE_TLS_CERT: cannot read");
    const mismatched = await failureOf(startJobwire({ ...config, tls: { certFile: certs.serverCert, keyFile: certs.clientKey, clientCaFile: undefined } }, logger));
    expect(mismatched.message).toContain("do not make a TLS context");
  });
});
