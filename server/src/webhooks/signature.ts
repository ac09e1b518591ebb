import { createHmac } from "node:crypto";

/**
 * The Standard Webhooks headers for one delivery: `webhook-id` (the event id, which
 * receivers use as an idempotency key), `webhook-timestamp` (seconds since the epoch) and
 * `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`). A secret of the
 * form `whsec_<base64>` is used as the bytes it encodes, any other as its UTF-8 bytes.
 *
 * A receiver verifies by recomputing the HMAC over the raw body with the same secret,
 * comparing in constant time, and rejecting timestamps far from its clock (replays).
 */
export function webhookHeaders(secret: string, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const key = secret.startsWith("whsec_") ? Buffer.from(secret.slice("whsec_".length), "base64") : Buffer.from(secret);
  const signature = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": `v1,${signature}`,
  };
}
