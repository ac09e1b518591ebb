import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  WebhookSecretSchema,
  type DeleteWebhookSecretRequest,
  type PutWebhookSecretRequest,
  type WebhookSecret,
} from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import type { NewJob } from "../store/sql/job-insert-many.js";
import type { Database } from "../store/orm.js";
import { webhookSecretDelete, webhookSecretList, webhookSecretsMissing, webhookSecretUpsert, type WebhookSecretRow } from "../store/sql/webhook-secret.js";
import { invalidArgument } from "./connect-errors.js";
import { checkName } from "./validate-job-spec.js";
import { checkWebhookSecret } from "./validate-webhook-target.js";

/** The QueueService handlers of named webhook secrets. */
export function webhookSecretHandlers(db: Database) {
  return {
    async putWebhookSecret(request: PutWebhookSecretRequest) {
      const name = checkName(request.name, "name");
      const secret = checkWebhookSecret(request.secret, "secret");
      return { secret: secretMessage(await webhookSecretUpsert(db.pool, name, secret)) };
    },

    async deleteWebhookSecret(request: DeleteWebhookSecretRequest) {
      const name = checkName(request.name, "name");
      if (!(await webhookSecretDelete(db.pool, name))) throw new ConnectError(`webhook secret ${name} not found`, Code.NotFound);
      return {};
    },

    async listWebhookSecrets() {
      return { secrets: (await webhookSecretList(db.pool)).map(secretMessage) };
    },
  };
}

/**
 * Refuses jobs whose webhook targets name a secret that is not stored, naming the first
 * such field. A secret deleted after this check fails the deliveries that need it.
 */
export async function checkWebhookSecretsExist(db: Database, jobs: readonly NewJob[], field: (index: number) => string): Promise<void> {
  const names = new Set(jobs.flatMap((job) => job.webhooks?.map((target) => target.secret_name) ?? []));
  if (names.size === 0) return;
  const missing = new Set(await webhookSecretsMissing(db.pool, [...names]));
  if (missing.size === 0) return;
  jobs.forEach((job, jobIndex) => {
    job.webhooks?.forEach((target, index) => {
      if (missing.has(target.secret_name)) {
        throw invalidArgument(`${field(jobIndex)}.webhooks[${index}].secret_name`, `names no stored webhook secret (store it with PutWebhookSecret)`);
      }
    });
  });
}

function secretMessage(row: WebhookSecretRow): WebhookSecret {
  return create(WebhookSecretSchema, { name: row.name, createdAt: timestampFromDate(row.createdAt), updatedAt: timestampFromDate(row.updatedAt) });
}
