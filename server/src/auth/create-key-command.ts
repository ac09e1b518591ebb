import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { CreateApiKeyRequestSchema, Role } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { configFromEnv } from "../config.js";
import { startEmbeddedPostgres } from "../db/embedded-postgres.js";
import { createLogger } from "../logger.js";
import { apiKeySpecFrom } from "../rpc/admin-service.js";
import { openDatabase } from "../store/orm.js";
import { createApiKey } from "./create-api-key.js";
import { checkNamespace, defaultNamespace } from "./namespace.js";

/**
 * `npm run create-api-key -- --role admin --principal ops [--namespace acme] [--queues a,b]
 * [--description …] [--expires-at 2030-01-01T00:00:00Z]`: creates an API key in
 * `DATABASE_URL` (or the embedded Postgres, while no server runs on it) and prints the
 * key, alone, on stdout. The way to the first key of a server on your own Postgres, to the
 * first admin key of a new namespace (tenant), and back in after losing every admin key.
 */
const usage =
  "usage: npm run create-api-key -- --role admin|producer|worker|reader --principal <name> [--namespace <name>] [--queues a,b] [--description <text>] [--expires-at <RFC 3339 time>]";
const { values } = parseArgs({
  options: {
    role: { type: "string" },
    principal: { type: "string" },
    namespace: { type: "string" },
    queues: { type: "string" },
    description: { type: "string" },
    "expires-at": { type: "string" },
  },
});
const roles: Record<string, Role> = { admin: Role.ADMIN, producer: Role.PRODUCER, worker: Role.WORKER, reader: Role.READER };
const expiresAt = values["expires-at"] ? new Date(values["expires-at"]) : undefined;
if (!values.role || !(values.role in roles) || !values.principal || (expiresAt && Number.isNaN(expiresAt.getTime()))) {
  console.error(usage);
  process.exit(2);
}
let spec;
try {
  spec = apiKeySpecFrom(
    create(CreateApiKeyRequestSchema, {
      principal: values.principal,
      role: roles[values.role],
      queues: values.queues ? values.queues.split(",").map((queue) => queue.trim()) : [],
      description: values.description ?? "",
      expiresAt: expiresAt && timestampFromDate(expiresAt),
    }),
    checkNamespace(values.namespace ?? defaultNamespace, "--namespace"),
    null,
  );
} catch (error) {
  console.error(error instanceof ConnectError ? error.rawMessage : error);
  process.exit(2);
}

const config = configFromEnv();
// Logs go to stderr: stdout carries the key alone, for scripts.
const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, pino.destination(2));
const embedded = config.databaseUrl
  ? undefined
  : await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPostgresPort, logger });
try {
  const db = await openDatabase({ url: config.databaseUrl ?? embedded!.url, poolSize: 1, logger });
  try {
    await db.migrate();
    const created = await createApiKey(db.pool, spec);
    if (!created) throw new Error("--expires-at must be in the future");
    console.error(
      `created API key ${created.row.id} in namespace ${created.row.namespace} for principal ${created.row.principal} with role ${created.row.role}; it is shown only this once:`,
    );
    console.log(created.key);
  } finally {
    await db.close();
  }
} finally {
  await embedded?.stop();
}
