import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { QueueService } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";

/** A QueueService client speaking gRPC over h2c, as a polyglot service would. */
export function grpcQueueClient(baseUrl: string): Client<typeof QueueService> {
  return createClient(QueueService, createGrpcTransport({ baseUrl, binaryOptions: { recursionLimit: 300 } }));
}

/** The answer to a Connect-protocol unary call made with plain `fetch` and JSON. */
export interface JsonAnswer {
  status: number;
  body: Record<string, any>;
}

/**
 * Calls a unary RPC with the Connect protocol over HTTP/1.1: a POST of JSON to
 * `/jobwire.v1.QueueService/Method`, exactly what `curl` does.
 */
export async function postJson(baseUrl: string, path: string, body: unknown): Promise<JsonAnswer> {
  const response = await fetch(`${baseUrl}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
}
