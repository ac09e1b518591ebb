import { dirname, join, resolve } from "node:path";

/** Authentication settings; see {@link authConfigFromEnv}. */
export interface AuthConfig {
  /**
   * `JOBWIRE_AUTH`: `on` (default) requires an API key on every call but health checks;
   * `off` lets every request act as `JOBWIRE_DEFAULT_PRINCIPAL`, an admin, for local
   * experiments only (the server warns loudly at startup).
   */
  enabled: boolean;
  /**
   * `JOBWIRE_BOOTSTRAP_KEY_FILE`: where a server with the embedded Postgres writes the
   * admin key it creates when no key exists (mode 0600). Default: `admin-key` beside the
   * embedded data folder (`.jobwire/admin-key` in `server/`).
   */
  bootstrapKeyFile: string | undefined;
}

/** TLS settings of the listening port; see {@link tlsConfigFromEnv}. */
export interface TlsConfig {
  /** `JOBWIRE_TLS_CERT`: PEM file of the server's certificate (chain). */
  certFile: string;
  /** `JOBWIRE_TLS_KEY`: PEM file of its private key. */
  keyFile: string;
  /**
   * `JOBWIRE_TLS_CLIENT_CA`: PEM file of the CA(s) client certificates must be signed by.
   * Set: every connection must present such a certificate. Unset: none is asked for.
   */
  clientCaFile: string | undefined;
}

/** Authentication on, bootstrap key file beside the data folder. */
export const defaultAuthConfig: AuthConfig = { enabled: true, bootstrapKeyFile: undefined };

/** Reads `JOBWIRE_AUTH` and `JOBWIRE_BOOTSTRAP_KEY_FILE`, failing loudly on a bad value. */
export function authConfigFromEnv(env: NodeJS.ProcessEnv): AuthConfig {
  const mode = (env.JOBWIRE_AUTH ?? "").trim().toLowerCase();
  if (mode !== "" && mode !== "on" && mode !== "off") throw new Error(`JOBWIRE_AUTH must be on or off, got ${JSON.stringify(env.JOBWIRE_AUTH)}`);
  return { enabled: mode !== "off", bootstrapKeyFile: env.JOBWIRE_BOOTSTRAP_KEY_FILE || undefined };
}

/**
 * Reads `JOBWIRE_TLS_CERT`, `JOBWIRE_TLS_KEY` and `JOBWIRE_TLS_CLIENT_CA`: undefined (plain
 * text) when none is set; the certificate and key come together, and a client CA needs
 * them.
 */
export function tlsConfigFromEnv(env: NodeJS.ProcessEnv): TlsConfig | undefined {
  const certFile = env.JOBWIRE_TLS_CERT || undefined;
  const keyFile = env.JOBWIRE_TLS_KEY || undefined;
  const clientCaFile = env.JOBWIRE_TLS_CLIENT_CA || undefined;
  if (!certFile && !keyFile) {
    if (clientCaFile) throw new Error("JOBWIRE_TLS_CLIENT_CA needs JOBWIRE_TLS_CERT and JOBWIRE_TLS_KEY");
    return undefined;
  }
  if (!certFile || !keyFile) throw new Error("JOBWIRE_TLS_CERT and JOBWIRE_TLS_KEY must be set together");
  return { certFile, keyFile, clientCaFile };
}

/** Where the bootstrap key goes: the configured file, or `admin-key` beside `dataDir`. */
export function bootstrapKeyFileOf(auth: AuthConfig, dataDir: string): string {
  return resolve(auth.bootstrapKeyFile ?? join(dirname(resolve(dataDir)), "admin-key"));
}
