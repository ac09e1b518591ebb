import { Code, ConnectError } from "@connectrpc/connect";
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

/** The QueueService handlers of webhook subscriptions. */
export function webhookSubscriptionHandlers(db: Database, sender: WebhookSender, created: () => void) {
  return {
    async createWebhookSubscription(request: CreateWebhookSubscriptionRequest) {
      const queue = checkName(request.queue, "queue");
      const url = checkWebhookUrl(request.url, "url", (candidate) => sender.refusal(candidate));
      const secret = checkWebhookSecret(request.secret, "secret");
      const eventTypes = checkWebhookEventTypes(request.eventTypes, "event_types");
      const row = await webhookSubscriptionInsert(db.pool, { id: uuidv7(), queue, url, eventTypes, secret });
      created();
      return { subscription: subscriptionMessage(row) };
    },

    async deleteWebhookSubscription(request: { id: string }) {
      const id = checkJobId(request.id, "id");
      if (!(await webhookSubscriptionDelete(db.pool, id))) throw new ConnectError(`webhook subscription ${id} not found`, Code.NotFound);
      return {};
    },

    async listWebhookSubscriptions(request: { queue: string }) {
      const queue = checkName(request.queue, "queue");
      return { subscriptions: (await webhookSubscriptionList(db.pool, queue)).map(subscriptionMessage) };
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
