import { timingSafeEqual } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Queryable } from "../store/transaction.js";
import { apiKeySelectCredential } from "../store/sql/api-key.js";
import { hashSecret, parseApiKey } from "./api-key-format.js";
import type { Caller } from "./caller.js";
import { defaultNamespace } from "./namespace.js";

/** Turns a request's `Authorization` header into its {@link Caller}. */
export interface Authenticator {
  /**
   * The caller presenting `authorization` (the header's value, null when absent); throws
   * `UNAUTHENTICATED` when there is no valid key. Error messages never repeat the header.
   */
  authenticate(authorization: string | null): Promise<Caller>;
}

/**
 * Authenticates API keys sent as `Authorization: Bearer jw_<id>_<secret>`, looking the key
 * up in the database on every request. Nothing is cached, so a revocation or an expiry
 * (judged by the database clock) is refused from the next request on, on every replica;
 * the price is one primary-key probe per request (see docs/security.md for its cost).
 */
export class ApiKeyAuthenticator implements Authenticator {
  constructor(private readonly db: Queryable) {}

  async authenticate(authorization: string | null): Promise<Caller> {
    if (authorization === null || authorization.trim() === "") {
      throw new ConnectError("authorization is missing (send an API key as Authorization Bearer <key>)", Code.Unauthenticated);
    }
    const [scheme, token, ...rest] = authorization.trim().split(/\s+/);
    const parsed = scheme?.toLowerCase() === "bearer" && token !== undefined && rest.length === 0 ? parseApiKey(token) : undefined;
    if (!parsed) throw invalidKey();
    const credential = await apiKeySelectCredential(this.db, parsed.id);
    if (!credential || !timingSafeEqual(credential.secretHash, hashSecret(parsed.secret))) throw invalidKey();
    // Only a caller who holds the secret learns why a real key is refused.
    if (credential.revoked) throw new ConnectError(`API key ${parsed.id} is revoked`, Code.Unauthenticated);
    if (credential.expired) throw new ConnectError(`API key ${parsed.id} has expired`, Code.Unauthenticated);
    return {
      namespace: credential.namespace,
      id: credential.principal,
      admin: credential.role === "admin",
      role: credential.role,
      keyId: parsed.id,
      queues: credential.queues,
    };
  }
}

/**
 * With authentication off (`JOBWIRE_AUTH=off`), every request acts as `principal`, an
 * admin of the namespace `default`, whatever it sends.
 */
export function anonymousAdmin(principal: string): Authenticator {
  const caller: Caller = { namespace: defaultNamespace, id: principal, admin: true, role: "admin", keyId: null, queues: [] };
  return { authenticate: async () => caller };
}

function invalidKey(): ConnectError {
  return new ConnectError("authorization is not a valid API key", Code.Unauthenticated);
}
