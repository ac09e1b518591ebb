import type { ApiKeyRoleName } from "../store/sql/api-key.js";

/**
 * What an API key may do. Every RPC lists the roles that may call it in the
 * authorization table (`authorization-table.ts`); docs/security.md shows it as a table.
 * - `admin`: everything, including keys, queue settings, webhooks and any principal's jobs.
 * - `producer`: enqueue; read, cancel and retry its own principal's jobs; their events.
 * - `worker`: the WorkerService only, for the queues named on its key.
 * - `reader`: every read, no change.
 */
export type Role = ApiKeyRoleName;

/** Every role, in the order the docs list them. */
export const roles: readonly Role[] = ["admin", "producer", "worker", "reader"];
