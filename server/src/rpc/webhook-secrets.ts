import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { NamespaceOf } from "../auth/caller.js";
import {
  WebhookSecretSchema,
  type DeleteWebhookSecretRequest,
  type PutWebhookSecretRequest,
  type WebhookSecret,
} from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import type { StoredWebhookTarget } from "../store/entities/job.js";
import type { Database } from "../store/orm.js";
import { webhookSecretDelete, webhookSecretList, webhookSecretsMissing, webhookSecretUpsert, type WebhookSecretRow } from "../store/sql/webhook-secret.js";
import { invalidArgument } from "./connect-errors.js";
import { checkName } from "./validate-job-spec.js";
import { checkWebhookSecret } from "./validate-webhook-target.js";

/**
 * The QueueService handlers of named webhook secrets. Names are the caller's namespace's:
 * a job can only be signed with a secret of its own namespace.
 */
export function webhookSecretHandlers(db: Database, namespaceOf: NamespaceOf) {
  return {
    async putWebhookSecret(request: PutWebhookSecretRequest, context: HandlerContext) {
      const name = checkName(request.name, "name");
      const secret = checkWebhookSecret(request.secret, "secret");
      return { secret: secretMessage(await webhookSecretUpsert(db.pool, namespaceOf(context), name, secret)) };
    },

    async deleteWebhookSecret(request: DeleteWebhookSecretRequest, context: HandlerContext) {
      const name = checkName(request.name, "name");
      if (!(await webhookSecretDelete(db.pool, namespaceOf(context), name))) throw new ConnectError(`webhook secret ${name} not found`, Code.NotFound);
      return {};
    },

    async listWebhookSecrets(_request: unknown, context: HandlerContext) {
      return { secrets: (await webhookSecretList(db.pool, namespaceOf(context))).map(secretMessage) };
    },
  };
}

/**
 * Refuses webhook targets that name a secret that is not stored in `namespace`, naming the
 * first such field; `targets` pairs each list of targets with its field
 * (`jobs[2].webhooks`). A secret deleted after this check fails the deliveries that need it.
 */
export async function checkWebhookSecretsExist(
  db: Database,
  namespace: string,
  targets: readonly { webhooks: StoredWebhookTarget[] | null; field: string }[],
): Promise<void> {
  const names = new Set(targets.flatMap((entry) => entry.webhooks?.map((target) => target.secret_name) ?? []));
  if (names.size === 0) return;
  const missing = new Set(await webhookSecretsMissing(db.pool, namespace, [...names]));
  for (const { webhooks, field } of targets) {
    webhooks?.forEach((target, index) => {
      if (missing.has(target.secret_name)) {
        throw invalidArgument(`${field}[${index}].secret_name`, "names no stored webhook secret (store it with PutWebhookSecret)");
      }
    });
  }
}

function secretMessage(row: WebhookSecretRow): WebhookSecret {
  return create(WebhookSecretSchema, { name: row.name, createdAt: timestampFromDate(row.createdAt), updatedAt: timestampFromDate(row.updatedAt) });
}
