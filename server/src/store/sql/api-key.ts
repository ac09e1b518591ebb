import { channels } from "../../dispatch/notification-listener.js";
import type { Queryable } from "../transaction.js";

/** The roles of API keys, as the `api_key_role` enum spells them. */
export type ApiKeyRoleName = "admin" | "producer" | "worker" | "reader";

/** An API key as stored, without its secret hash. */
export interface ApiKeyRow {
  id: string;
  namespace: string;
  principal: string;
  role: ApiKeyRoleName;
  queues: string[];
  description: string;
  createdBy: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  revokedBy: string | null;
  revokedAt: Date | null;
}

/** What a request's authentication needs of a key, judged by the database clock. */
export interface ApiKeyCredential {
  secretHash: Buffer;
  namespace: string;
  principal: string;
  role: ApiKeyRoleName;
  queues: string[];
  expired: boolean;
  revoked: boolean;
}

/** A new key's row. */
export interface ApiKeyInsert {
  id: string;
  namespace: string;
  secretHash: Buffer;
  principal: string;
  role: ApiKeyRoleName;
  queues: readonly string[];
  description: string;
  createdBy: string | null;
  expiresAt: Date | null;
}

/** The names {@link columns} gives the columns, to select them again from a CTE. */
const columnNames = `id, namespace, principal, role, queues, description, "createdBy", "createdAt", "expiresAt", "revokedBy", "revokedAt"`;
const columns = `id, namespace, principal, role::text AS role, queues, description, created_by AS "createdBy", created_at AS "createdAt",
                 expires_at AS "expiresAt", revoked_by AS "revokedBy", revoked_at AS "revokedAt"`;

/**
 * Stores a new key. Returns undefined, storing nothing, when `expiresAt` is not at least a
 * second after the database's clock (the constraint wants it after `created_at`).
 */
export async function apiKeyInsert(db: Queryable, key: ApiKeyInsert): Promise<ApiKeyRow | undefined> {
  const result = await db.query<ApiKeyRow>(
    `INSERT INTO api_key (id, secret_hash, principal, role, queues, description, created_by, expires_at, namespace)
     SELECT $1, $2, $3, $4::api_key_role, $5::text[], $6, $7, $8::timestamptz, $9
     WHERE $8::timestamptz IS NULL OR $8::timestamptz > clock_timestamp() + interval '1 second'
     RETURNING ${columns}`,
    [key.id, key.secretHash, key.principal, key.role, key.queues, key.description, key.createdBy, key.expiresAt, key.namespace],
  );
  const row = result.rows[0];
  return row && normalise(row);
}

/**
 * The credential of key `id`, for authenticating a request; undefined if there is none.
 * One primary-key probe, prepared once per connection: it runs on every request.
 */
export async function apiKeySelectCredential(db: Queryable, id: string): Promise<ApiKeyCredential | undefined> {
  const result = await db.query<ApiKeyCredential>({
    name: "jobwire_api_key_credential",
    text: `SELECT secret_hash AS "secretHash", namespace, principal, role::text AS role, queues,
                  coalesce(expires_at <= clock_timestamp(), false) AS expired, revoked_at IS NOT NULL AS revoked
           FROM api_key WHERE id = $1`,
    values: [id],
  });
  return result.rows[0];
}

/**
 * Revokes key `id` of `namespace` by `by` (a principal); a revoked key stays as it was. The same
 * statement NOTIFYs `channels.apiKeyRevoked`, so that every replica ends the key's
 * open streams when it commits. Returns the key after the call, or undefined if the
 * namespace has none such.
 */
export async function apiKeyRevoke(db: Queryable, namespace: string, id: string, by: string | null): Promise<ApiKeyRow | undefined> {
  const result = await db.query<ApiKeyRow>(
    `WITH revoked AS (
       UPDATE api_key SET revoked_at = clock_timestamp(), revoked_by = $2
       WHERE id = $1 AND namespace = $3 AND revoked_at IS NULL
       RETURNING ${columns}, pg_notify('${channels.apiKeyRevoked}', id)
     )
     SELECT ${columnNames} FROM revoked
     UNION ALL
     SELECT ${columns} FROM api_key WHERE id = $1 AND namespace = $3 AND NOT EXISTS (SELECT 1 FROM revoked)`,
    [id, by, namespace],
  );
  const row = result.rows[0];
  return row && normalise(row);
}

/** What {@link apiKeySelectPage} filters on. */
export interface ApiKeyFilter {
  namespace: string;
  /** Only this principal's keys. */
  principal: string | undefined;
  /** Revoked keys too. */
  includeRevoked: boolean;
}

/**
 * Keys newest first (by creation time, then id), `limit` at most, strictly after key
 * `afterId` in that order. Keys are never deleted, so the key a page ended on is always
 * there to continue from.
 */
export async function apiKeySelectPage(db: Queryable, filter: ApiKeyFilter, limit: number, afterId: string | undefined): Promise<ApiKeyRow[]> {
  const result = await db.query<ApiKeyRow>(
    `SELECT ${columns} FROM api_key
     WHERE namespace = $5
       AND ($1::text IS NULL OR principal = $1)
       AND ($2::boolean OR revoked_at IS NULL)
       AND ($3::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM api_key WHERE id = $3 AND namespace = $5))
     ORDER BY created_at DESC, id DESC
     LIMIT $4`,
    [filter.principal ?? null, filter.includeRevoked, afterId ?? null, limit, filter.namespace],
  );
  return result.rows.map(normalise);
}

/**
 * Stores `key` only if no key exists at all, deciding under a transaction-scoped advisory
 * lock so that two servers starting together on one database make one key between them.
 * Returns the key, or undefined when there already was one. Must run in a transaction.
 */
export async function apiKeyInsertIfNone(tx: Queryable, key: ApiKeyInsert): Promise<ApiKeyRow | undefined> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('jobwire_api_key_bootstrap'))");
  const existing = await tx.query("SELECT 1 FROM api_key LIMIT 1");
  if ((existing.rowCount ?? 0) > 0) return undefined;
  return apiKeyInsert(tx, key);
}

/** Whether any key exists (revoked or not). */
export async function apiKeyAnyExists(db: Queryable): Promise<boolean> {
  return ((await db.query("SELECT 1 FROM api_key LIMIT 1")).rowCount ?? 0) > 0;
}

function normalise(row: ApiKeyRow): ApiKeyRow {
  return {
    ...row,
    createdAt: new Date(row.createdAt),
    expiresAt: row.expiresAt && new Date(row.expiresAt),
    revokedAt: row.revokedAt && new Date(row.revokedAt),
  };
}

/** Which of `ids` are revoked or expired now (by the database clock). */
export async function apiKeySelectUnusable(db: Queryable, ids: readonly string[]): Promise<{ id: string; revoked: boolean }[]> {
  const result = await db.query<{ id: string; revoked: boolean }>(
    `SELECT id, revoked_at IS NOT NULL AS revoked FROM api_key
     WHERE id = ANY($1::text[]) AND (revoked_at IS NOT NULL OR expires_at <= clock_timestamp())`,
    [ids],
  );
  return result.rows;
}
