import type { Interceptor } from "@connectrpc/connect";

/** TLS options for `https://` servers, as Node's `tls.connect` takes them (PEM). */
export interface TlsOptions {
  /** CA certificate(s) to trust besides the system's, e.g. a self-signed server's. */
  ca?: string | Buffer;
  /** A client certificate, for servers that ask for one (`JOBWIRE_TLS_CLIENT_CA`). */
  cert?: string | Buffer;
  /** The client certificate's private key. */
  key?: string | Buffer;
}

/** An interceptor that sends `apiKey` as `Authorization: Bearer <key>`; none without a key. */
export function apiKeyInterceptors(apiKey: string | undefined): Interceptor[] {
  if (apiKey === undefined || apiKey === "") return [];
  const authorization = `Bearer ${apiKey}`;
  return [
    (next) => (request) => {
      request.header.set("authorization", authorization);
      return next(request);
    },
  ];
}
