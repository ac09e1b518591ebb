import { createApiKey, type ApiKeySpec, type JobwireServer } from "@jobwire/server";

/**
 * Creates an API key straight in the server's database (as `npm run create-api-key`
 * does) and returns the key itself, `jw_<id>_<secret>`.
 */
export async function apiKeyOn(server: JobwireServer, spec: ApiKeySpec): Promise<string> {
  const created = await createApiKey(server.db.pool, spec);
  if (!created) throw new Error(`the key for ${spec.principal} was not created`);
  return created.key;
}

/** The public id of a key: the part between `jw_` and the second `_`. */
export function keyIdOf(key: string): string {
  return key.split("_")[1]!;
}

/** The `Authorization` header value for `key`. */
export function bearer(key: string): string {
  return `Bearer ${key}`;
}
