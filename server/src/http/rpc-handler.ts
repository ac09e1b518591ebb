import type http from "node:http";
import type http2 from "node:http2";
import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ConnectRouterOptions } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "../logger.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** Options of {@link rpcHandler}. */
export interface RpcHandlerOptions extends ConnectRouterOptions {
  /** Registers the services. */
  routes(router: ConnectRouter): void;
  /** Serves requests for paths that are no procedure. */
  fallback(request: NodeRequest, response: NodeResponse): void;
  /** Where failures to write an answer are logged. */
  log: Logger;
}

/**
 * connect-node's `connectNodeAdapter`, with one difference: an answer that could not be
 * written is logged through the server's logger, at debug level when the client had gone
 * away (it cancelled, or closed the connection while a stream waited for it to read). The
 * adapter prints every such failure with `console.error`, stack and all, so any client
 * could fill stderr by dropping streams.
 */
export function rpcHandler(options: RpcHandlerOptions): (request: NodeRequest, response: NodeResponse) => void {
  const { routes, fallback, log, ...routerOptions } = options;
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...routerOptions });
  routes(router);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  return (request, response) => {
    const handler = handlers.get((request.url ?? "").split("?", 2)[0] ?? "");
    if (!handler) {
      fallback(request, response);
      return;
    }
    const universal = universalRequestFromNodeRequest(request as http.IncomingMessage, response as http.ServerResponse, undefined, undefined);
    handler(universal)
      .then((answer) => universalResponseToNodeResponse(answer, response as http.ServerResponse))
      .catch((reason: unknown) => {
        const error = ConnectError.from(reason);
        const procedure = `${handler.service.typeName}/${handler.method.name}`;
        if (error.code === Code.Aborted || universal.signal.aborted || response.destroyed) {
          log.debug({ procedure, err: reason }, "the client went away before its answer was written");
        } else {
          log.error({ procedure, err: reason }, "writing an answer failed");
        }
      });
  };
}
