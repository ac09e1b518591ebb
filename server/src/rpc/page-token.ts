import { createHash } from "node:crypto";
import { invalidArgument } from "./connect-errors.js";

/** What a ListJobs page token carries: where the last page ended, and for which filter. */
interface PageCursor {
  /** Format version. */
  v: 1;
  /** Id of the last job returned; the next page starts after it. */
  after: string;
  /** Hash of the filter the listing was made with; a token only continues that listing. */
  f: string;
}

/** A short, stable fingerprint of a filter object, to bind page tokens to it. */
export function filterFingerprint(filter: unknown): string {
  return createHash("sha256").update(JSON.stringify(filter)).digest("base64url").slice(0, 16);
}

/** Encodes an opaque page token (base64url JSON). */
export function encodePageToken(after: string, fingerprint: string): string {
  const cursor: PageCursor = { v: 1, after, f: fingerprint };
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

/**
 * Decodes a page token made by {@link encodePageToken} for the same filter; anything else
 * is `INVALID_ARGUMENT` on `page_token`, naming the RPC `listedBy` that makes such tokens.
 */
export function decodePageToken(token: string, fingerprint: string, idPattern: RegExp, listedBy: string): string {
  let cursor: Partial<PageCursor>;
  try {
    cursor = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<PageCursor>;
  } catch {
    throw invalidArgument("page_token", `is not a token returned by ${listedBy}`);
  }
  if (cursor?.v !== 1 || typeof cursor.after !== "string" || !idPattern.test(cursor.after)) {
    throw invalidArgument("page_token", `is not a token returned by ${listedBy}`);
  }
  if (cursor.f !== fingerprint) throw invalidArgument("page_token", "was made for a different filter");
  return cursor.after;
}
