import type { Queryable } from "../store/transaction.js";
import { apiKeyInsert, apiKeyInsertIfNone, type ApiKeyInsert, type ApiKeyRow } from "../store/sql/api-key.js";
import { newApiKey } from "./api-key-format.js";
import { defaultNamespace } from "./namespace.js";
import type { Role } from "./roles.js";

/** What a new API key is for. */
export interface ApiKeySpec {
  /** The namespace it belongs to, and acts in. Default `default`. */
  namespace?: string;
  /** Who the key acts as: the owner recorded on the jobs it enqueues. */
  principal: string;
  role: Role;
  /** For worker keys: the queues it may lease from (at least one). Otherwise empty. */
  queues?: readonly string[];
  /** A note for people. Default empty. */
  description?: string;
  /** When it stops working. Default: never. */
  expiresAt?: Date | null;
  /** The principal creating it; null for the bootstrap key and the command line. */
  createdBy?: string | null;
}

/** A key just made: its row, and the key itself, which exists nowhere else. */
export interface CreatedApiKey {
  row: ApiKeyRow;
  key: string;
}

/**
 * Makes and stores a new API key. Returns undefined when `expiresAt` is not in the future
 * by the database's clock (nothing is stored). Inputs must be valid (see the AdminService
 * handler's checks); the table's constraints refuse the rest.
 */
export async function createApiKey(db: Queryable, spec: ApiKeySpec): Promise<CreatedApiKey | undefined> {
  const fresh = newApiKey();
  const row = await apiKeyInsert(db, insertOf(fresh, spec));
  return row && { row, key: fresh.key };
}

/**
 * As {@link createApiKey}, but only when no key exists at all (revoked ones count); for
 * the bootstrap key. `tx` must be a transaction.
 */
export async function createFirstApiKey(tx: Queryable, spec: ApiKeySpec): Promise<CreatedApiKey | undefined> {
  const fresh = newApiKey();
  const row = await apiKeyInsertIfNone(tx, insertOf(fresh, spec));
  return row && { row, key: fresh.key };
}

function insertOf(fresh: ReturnType<typeof newApiKey>, spec: ApiKeySpec): ApiKeyInsert {
  return {
    id: fresh.id,
    namespace: spec.namespace ?? defaultNamespace,
    secretHash: fresh.secretHash,
    principal: spec.principal,
    role: spec.role,
    queues: spec.queues ?? [],
    description: spec.description ?? "",
    createdBy: spec.createdBy ?? null,
    expiresAt: spec.expiresAt ?? null,
  };
}
