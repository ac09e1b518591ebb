import { compressionGzip } from "@connectrpc/connect-node";
import type { Compression } from "@connectrpc/connect/protocol";

/**
 * The compressions the SDK's transports accept in responses: none unless asked for, as in
 * gRPC's own clients. connect-node otherwise accepts gzip and brotli, and the server then
 * gzips every message over 1 KiB (lease batches, enqueue answers), which costs both ends
 * CPU for nothing on a LAN. `compression: true` is for a slow link.
 */
export function acceptedCompressions(compression: boolean | undefined): Compression[] {
  return compression ? [compressionGzip] : [];
}
