import http from "node:http";
import { dirname } from "node:path";
import { freePort } from "../../harness/free-port.js";
import { ManagedProcess } from "../../harness/managed-process.js";
import { jobwireServerArgs, jobwireServerEntry, nodeBinary } from "../../harness/paths.js";
import { pollUntil } from "../../harness/wait-for.js";

/** A Jobwire server running as its own process, as users run it. */
export interface JobwireServerProcess {
  /** `http://127.0.0.1:port`, serving gRPC. */
  readonly url: string;
  readonly process: ManagedProcess;
  /** Stops it with SIGTERM (its graceful shutdown) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `server/src/main.ts` on the project's Node, with `DATABASE_URL`, a free
 * `JOBWIRE_PORT` and `JOBWIRE_LOG_LEVEL=warn`, every other setting at its default (API keys
 * required), unless `BENCH_JOBWIRE_AUTH=off` turns authentication off to measure its cost. It runs
 * the migrations, then serves; this resolves once `GET /readyz` answers 200 (database
 * reachable and migrated), and fails loudly if the process exits or 60 s pass first.
 */
export async function startJobwireServer(databaseUrl: string): Promise<JobwireServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const process = ManagedProcess.start({
    name: `jobwire server :${port}`,
    command: nodeBinary,
    args: jobwireServerArgs(),
    cwd: dirname(dirname(jobwireServerEntry)),
    env: {
      DATABASE_URL: databaseUrl,
      JOBWIRE_HOST: "127.0.0.1",
      JOBWIRE_PORT: String(port),
      JOBWIRE_LOG_LEVEL: "warn",
      JOBWIRE_AUTH: globalThis.process.env.BENCH_JOBWIRE_AUTH === "off" ? "off" : "on",
    },
  });
  try {
    await pollUntil(
      `${url}/readyz to answer 200`,
      async () => ((await probeStatus(`${url}/readyz`)) === 200 ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 25, abortIf: () => (process.exitStatus ? process.describe() : undefined) },
    );
  } catch (error) {
    await process.stop();
    throw error;
  }
  return { url, process, stop: async () => void (await process.stop(15_000)) };
}

/** The status of a GET over a connection of its own, closed after the answer, so no idle
 * keep-alive connection from the harness holds up the server's graceful shutdown. */
function probeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: 2_000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("timeout", () => request.destroy(new Error("no answer within 2 s")));
    request.on("error", reject);
  });
}
