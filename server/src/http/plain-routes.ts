import type http from "node:http";
import type http2 from "node:http2";

type Handler = (request: http.IncomingMessage | http2.Http2ServerRequest, response: http.ServerResponse | http2.Http2ServerResponse) => void;

/**
 * The plain HTTP paths beside the RPC routes: `/v1/events` (Server-Sent Events) and the
 * probes, which answer everything else (`/healthz`, `/readyz`, or 404). A POST to any other
 * path is a call of a procedure this server does not have: see {@link unknownProcedure}.
 */
export function plainHttpRoutes(probes: Handler, events: Handler): Handler {
  return (request, response) => {
    const path = (request.url ?? "").split("?")[0];
    if (path === "/v1/events" && request.method === "GET") return events(request, response);
    if (request.method === "POST") return unknownProcedure(request, response as http.ServerResponse);
    probes(request, response);
  };
}

/**
 * Answers a call of a procedure the server does not serve as each protocol expects:
 * gRPC and gRPC-Web get HTTP 200 with `grpc-status` 12 (UNIMPLEMENTED) and no message, the
 * Connect protocol HTTP 404 with code `unimplemented`. (A 405, as for other unknown paths,
 * reaches gRPC clients as UNKNOWN.)
 */
function unknownProcedure(request: http.IncomingMessage | http2.Http2ServerRequest, response: http.ServerResponse): void {
  const path = (request.url ?? "").split("?")[0] ?? "";
  const message = `procedure ${path.length > 128 ? `${path.slice(0, 128)}…` : path} is not served here`;
  const contentType = String(request.headers["content-type"] ?? "");
  // The body is not needed: answer at once and let the connection drop whatever follows.
  request.resume();
  if (contentType.startsWith("application/grpc")) {
    response.writeHead(200, {
      "content-type": contentType.split(";")[0]!,
      "grpc-status": "12",
      "grpc-message": encodeURIComponent(message),
    });
    response.end();
    return;
  }
  response.writeHead(404, { "content-type": "application/json" });
  response.end(JSON.stringify({ code: "unimplemented", message }));
}
