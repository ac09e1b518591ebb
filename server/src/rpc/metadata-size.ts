import { Code, ConnectError } from "@connectrpc/connect";

/** What HTTP/2 adds to each header entry when it sizes a header list (RFC 9113, 6.5.2). */
const entryOverheadBytes = 32;

/**
 * The size of request metadata as HTTP/2 counts a header list: the bytes of every name and
 * value plus 32 per entry. Pseudo-headers (`:path`, …) are not in `headers`.
 */
export function metadataBytes(headers: Iterable<[string, string]>): number {
  let total = 0;
  for (const [name, value] of headers) total += Buffer.byteLength(name, "latin1") + Buffer.byteLength(value, "latin1") + entryOverheadBytes;
  return total;
}

/**
 * Refuses metadata larger than `maxBytes` with RESOURCE_EXHAUSTED naming the limit and its
 * variable, before the request body is read.
 */
export function checkMetadataSize(headers: Iterable<[string, string]>, maxBytes: number): void {
  const size = metadataBytes(headers);
  if (size > maxBytes) {
    throw new ConnectError(
      `metadata is ${size} bytes which is over the limit of ${maxBytes} bytes (JOBWIRE_MAX_METADATA_BYTES)`,
      Code.ResourceExhausted,
    );
  }
}

/**
 * The header size the HTTP layer itself accepts: well above the metadata limit, so that
 * metadata somewhat over it still gets a Connect error naming the limit, while far larger
 * header blocks are refused before any of them is buffered for a call.
 */
export function transportHeaderLimitBytes(maxMetadataBytes: number): number {
  return 2 * maxMetadataBytes + 8 * 1024;
}
