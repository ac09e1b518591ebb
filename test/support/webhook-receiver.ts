import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** One request a {@link WebhookReceiver} received. */
export interface ReceivedWebhook {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** `performance.now()` when the body had arrived. */
  at: number;
}

/** How a receiver answers one request: a status, or `"hold"` to keep it open until released. */
export type ReceiverAnswer = number | "hold";

/** A real HTTP receiver of webhooks on loopback; see {@link startWebhookReceiver}. */
export interface WebhookReceiver {
  /** `http://127.0.0.1:port`. */
  url: string;
  /** Every request received, in order. */
  received: ReceivedWebhook[];
  /** Answers queued per path, used in order; once used up, 200. */
  answers: Map<string, ReceiverAnswer[]>;
  /** Resolves once a request to `path` is being held open. */
  held(path: string): Promise<void>;
  /** Answers every held request with `status`. */
  release(status?: number): void;
  close(): Promise<void>;
}

/**
 * Starts a webhook receiver: a plain `node:http` server on loopback that records each
 * request and answers it as queued for its path (see {@link WebhookReceiver.answers}).
 */
export function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const answers = new Map<string, ReceiverAnswer[]>();
  const holding: http.ServerResponse[] = [];
  const holdWaiters: { path: string; resolve: () => void }[] = [];
  const server = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const path = request.url ?? "/";
      received.push({ path, headers: request.headers, body, at: performance.now() });
      const answer = answers.get(path)?.shift() ?? 200;
      if (answer === "hold") {
        holding.push(response);
        for (const waiter of holdWaiters.filter((w) => w.path === path)) {
          holdWaiters.splice(holdWaiters.indexOf(waiter), 1);
          waiter.resolve();
        }
        return;
      }
      response.writeHead(answer, answer === 302 ? { location: "/redirected" } : {});
      response.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        received,
        answers,
        held: (path) => new Promise<void>((done) => holdWaiters.push({ path, resolve: done })),
        release(status = 200) {
          for (const response of holding.splice(0)) {
            if (!response.destroyed) response.writeHead(status).end();
          }
        },
        close() {
          server.closeAllConnections();
          return new Promise<void>((done) => server.close(() => done()));
        },
      });
    }),
  );
}

/**
 * Verifies a delivery the way a receiver should (Standard Webhooks): HMAC-SHA256 over
 * `id.timestamp.body` with the secret (base64 after `whsec_`), compared in constant time,
 * and a timestamp within five minutes.
 */
export function verifyWebhook(request: ReceivedWebhook, secret: string): boolean {
  const id = String(request.headers["webhook-id"]);
  const timestamp = String(request.headers["webhook-timestamp"]);
  const key = secret.startsWith("whsec_") ? Buffer.from(secret.slice("whsec_".length), "base64") : Buffer.from(secret);
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${request.body}`).digest();
  const given = Buffer.from(String(request.headers["webhook-signature"]).replace(/^v1,/, ""), "base64");
  return given.length === expected.length && timingSafeEqual(given, expected) && Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
}
