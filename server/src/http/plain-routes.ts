import type http from "node:http";
import type http2 from "node:http2";

type Handler = (request: http.IncomingMessage | http2.Http2ServerRequest, response: http.ServerResponse | http2.Http2ServerResponse) => void;

/**
 * The plain HTTP paths beside the RPC routes: `/v1/events` (Server-Sent Events) and the
 * probes, which answer everything else (`/healthz`, `/readyz`, or 404).
 */
export function plainHttpRoutes(probes: Handler, events: Handler): Handler {
  return (request, response) => {
    const path = (request.url ?? "").split("?")[0];
    if (path === "/v1/events" && request.method === "GET") return events(request, response);
    probes(request, response);
  };
}
