import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { AdminService, ApiKeySchema, Role as RoleMessage, type ApiKey, type CreateApiKeyRequest } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { callerOf } from "../auth/caller.js";
import { createApiKey, type ApiKeySpec } from "../auth/create-api-key.js";
import type { Role } from "../auth/roles.js";
import type { Logger } from "../logger.js";
import { apiKeyRevoke, apiKeySelectPage, type ApiKeyRow } from "../store/sql/api-key.js";
import type { Database } from "../store/orm.js";
import { invalidArgument } from "./connect-errors.js";
import { checkStorableString } from "./json-value.js";
import { decodePageToken, encodePageToken, filterFingerprint } from "./page-token.js";
import { dateFromTimestamp } from "./proto-time.js";
import { checkName } from "./validate-job-spec.js";

/** What the AdminService handlers need. */
export interface AdminServiceDeps {
  db: Database;
  /** Where key creations and revocations are recorded (never the keys themselves). */
  log: Logger;
  /** Called after a key was revoked: end its streams on this replica. */
  keyRevoked(keyId: string): void;
}

/** A principal: what jobs record as their owner. The `api_key_principal_format` constraint. */
export const principalPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
const keyIdPattern = /^[a-z0-9]{12}$/;
const limits = { queuesMax: 100, descriptionMax: 256, pageSizeDefault: 50, pageSizeMax: 1000 };

const roleNames: Record<Exclude<RoleMessage, RoleMessage.UNSPECIFIED>, Role> = {
  [RoleMessage.ADMIN]: "admin",
  [RoleMessage.PRODUCER]: "producer",
  [RoleMessage.WORKER]: "worker",
  [RoleMessage.READER]: "reader",
};
const roleMessages = Object.fromEntries(Object.entries(roleNames).map(([message, name]) => [name, Number(message)])) as Record<Role, RoleMessage>;

/** The AdminService handlers: API keys. Only admins reach them (the authorization table). */
export function adminServiceImpl(deps: AdminServiceDeps): ServiceImpl<typeof AdminService> {
  const { db, log } = deps;
  return {
    async createApiKey(request, context) {
      const caller = callerOf(context);
      // An admin makes keys of its own namespace only; `npm run create-api-key` makes others.
      const spec = apiKeySpecFrom(request, caller.namespace, caller.id);
      const created = await createApiKey(db.pool, spec);
      if (!created) throw invalidArgument("expires_at", "must be in the future");
      log.info({ keyId: created.row.id, namespace: spec.namespace, principal: spec.principal, role: spec.role, by: caller.id }, "API key created");
      return { apiKey: apiKeyMessage(created.row), secret: created.key };
    },

    async listApiKeys(request, context) {
      const principal = request.principal === "" ? undefined : checkPrincipal(request.principal, "principal");
      const pageSize = request.pageSize || limits.pageSizeDefault;
      if (pageSize < 1 || pageSize > limits.pageSizeMax) throw invalidArgument("page_size", `must be between 0 and ${limits.pageSizeMax}`);
      const filter = { namespace: callerOf(context).namespace, principal, includeRevoked: request.includeRevoked };
      const fingerprint = filterFingerprint({ apiKeys: filter });
      const after = request.pageToken ? decodePageToken(request.pageToken, fingerprint, keyIdPattern, "ListApiKeys") : undefined;
      const rows = await apiKeySelectPage(db.pool, filter, pageSize + 1, after);
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        apiKeys: page.map(apiKeyMessage),
        nextPageToken: rows.length > pageSize && last ? encodePageToken(last.id, fingerprint) : "",
      };
    },

    async revokeApiKey(request, context) {
      if (request.id === "") throw invalidArgument("id", "is required");
      if (!keyIdPattern.test(request.id)) throw invalidArgument("id", "must be the public id of an API key (12 letters or digits)");
      const caller = callerOf(context);
      const row = await apiKeyRevoke(db.pool, caller.namespace, request.id, caller.id);
      if (!row) throw new ConnectError(`API key ${request.id} not found`, Code.NotFound);
      log.info({ keyId: row.id, namespace: row.namespace, principal: row.principal, by: caller.id }, "API key revoked");
      // Every replica (this one included) ends the key's open streams on the NOTIFY the
      // revocation sent; this one need not wait for it.
      deps.keyRevoked(row.id);
      return { apiKey: apiKeyMessage(row) };
    },
  };
}

/**
 * Checks a CreateApiKeyRequest (`INVALID_ARGUMENT` naming the field) and turns it into the
 * key to create in `namespace`; also used by `npm run create-api-key`.
 */
export function apiKeySpecFrom(request: CreateApiKeyRequest, namespace: string, createdBy: string | null): ApiKeySpec {
  const principal = checkPrincipal(request.principal, "principal");
  if (request.role === RoleMessage.UNSPECIFIED) throw invalidArgument("role", "is required");
  const role = roleNames[request.role as keyof typeof roleNames];
  if (!role) throw invalidArgument("role", "must be ADMIN or PRODUCER or WORKER or READER");
  if (role === "worker" && request.queues.length === 0) throw invalidArgument("queues", "must name at least one queue for a worker key");
  if (role !== "worker" && request.queues.length > 0) throw invalidArgument("queues", "must be empty unless the role is WORKER");
  if (request.queues.length > limits.queuesMax) throw invalidArgument("queues", `must have at most ${limits.queuesMax} entries`);
  const queues = [...new Set(request.queues.map((queue, index) => checkName(queue, `queues[${index}]`)))];
  if (request.description.length > limits.descriptionMax) throw invalidArgument("description", `must be at most ${limits.descriptionMax} characters`);
  checkStorableString(request.description, "description");
  const expiresAt = request.expiresAt ? dateFromTimestamp(request.expiresAt, "expires_at") : null;
  return { namespace, principal, role, queues, description: request.description, expiresAt, createdBy };
}

function checkPrincipal(principal: string, field: string): string {
  if (principal === "") throw invalidArgument(field, "is required");
  if (!principalPattern.test(principal)) {
    throw invalidArgument(field, "must be 1 to 128 letters or digits or the marks dot underscore hyphen colon at-sign and start with a letter or digit");
  }
  return principal;
}

/** The wire form of a key: never its secret or hash. */
export function apiKeyMessage(row: ApiKeyRow): ApiKey {
  return create(ApiKeySchema, {
    id: row.id,
    namespace: row.namespace,
    principal: row.principal,
    role: roleMessages[row.role],
    queues: row.queues,
    description: row.description,
    createdAt: timestampFromDate(row.createdAt),
    expiresAt: row.expiresAt ? timestampFromDate(row.expiresAt) : undefined,
    revokedAt: row.revokedAt ? timestampFromDate(row.revokedAt) : undefined,
    createdBy: row.createdBy ?? "",
    revokedBy: row.revokedBy ?? "",
  });
}
