import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { NamespaceOf } from "../auth/caller.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import {
  WebhookSubscriptionSchema,
  type CreateWebhookSubscriptionRequest,
  type WebhookSubscription,
} from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { v7 as uuidv7 } from "uuid";
import type { Database } from "../store/orm.js";
import {
  webhookSubscriptionDelete,
  webhookSubscriptionInsert,
  webhookSubscriptionList,
  type SubscriptionRow,
} from "../store/sql/webhook-subscription.js";
import type { WebhookSender } from "../webhooks/webhook-sender.js";
import { checkJobId } from "./job-id.js";
import { checkName } from "./validate-job-spec.js";
import { checkWebhookEventTypes, checkWebhookSecret, checkWebhookUrl } from "./validate-webhook-target.js";

/**
 * The QueueService handlers of webhook subscriptions, each in the caller's namespace
 * (`namespaceOf` reads it from the call's context).
 */
export function webhookSubscriptionHandlers(db: Database, sender: WebhookSender, created: () => void, namespaceOf: NamespaceOf) {
  return {
    async createWebhookSubscription(request: CreateWebhookSubscriptionRequest, context: HandlerContext) {
      const queue = checkName(request.queue, "queue");
      const url = checkWebhookUrl(request.url, "url", (candidate) => sender.refusal(candidate));
      const secret = checkWebhookSecret(request.secret, "secret");
      const eventTypes = checkWebhookEventTypes(request.eventTypes, "event_types");
      const row = await webhookSubscriptionInsert(db.pool, { id: uuidv7(), namespace: namespaceOf(context), queue, url, eventTypes, secret });
      created();
      return { subscription: subscriptionMessage(row) };
    },

    async deleteWebhookSubscription(request: { id: string }, context: HandlerContext) {
      const id = checkJobId(request.id, "id");
      if (!(await webhookSubscriptionDelete(db.pool, namespaceOf(context), id))) throw new ConnectError(`webhook subscription ${id} not found`, Code.NotFound);
      return {};
    },

    async listWebhookSubscriptions(request: { queue: string }, context: HandlerContext) {
      const queue = checkName(request.queue, "queue");
      return { subscriptions: (await webhookSubscriptionList(db.pool, namespaceOf(context), queue)).map(subscriptionMessage) };
    },
  };
}

function subscriptionMessage(row: SubscriptionRow): WebhookSubscription {
  return create(WebhookSubscriptionSchema, {
    id: row.id,
    queue: row.queue,
    url: row.url,
    eventTypes: row.eventTypes,
    createdAt: timestampFromDate(row.createdAt),
  });
}
