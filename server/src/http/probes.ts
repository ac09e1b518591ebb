import type http from "node:http";
import type http2 from "node:http2";

/** What the probes ask of the server. */
export interface ProbeDeps {
  /** Database reachable and migrated, and not shutting down. */
  isReady(): Promise<boolean>;
}

/**
 * Plain HTTP probes beside the RPC routes: `GET /healthz` answers 200 while the process is
 * up; `GET /readyz` answers 200 when the server can serve, 503 otherwise. Any other path is
 * 404. Both bodies are JSON and carry the Node version the server runs on.
 */
export function probeHandler(deps: ProbeDeps) {
  return (request: http.IncomingMessage | http2.Http2ServerRequest, response: http.ServerResponse | http2.Http2ServerResponse): void => {
    const send = (status: number, body: object) => {
      const json = JSON.stringify(body);
      (response as http.ServerResponse).writeHead(status, { "content-type": "application/json" });
      (response as http.ServerResponse).end(json);
    };
    const path = (request.url ?? "").split("?")[0];
    if (request.method !== "GET" && request.method !== "HEAD") return send(405, { error: "method not allowed" });
    if (path === "/healthz") return send(200, { status: "ok", node: process.version });
    if (path === "/readyz") {
      deps.isReady().then(
        (ready) => send(ready ? 200 : 503, { status: ready ? "ready" : "not ready", node: process.version }),
        () => send(503, { status: "not ready", node: process.version }),
      );
      return;
    }
    send(404, { error: "not found" });
  };
}
