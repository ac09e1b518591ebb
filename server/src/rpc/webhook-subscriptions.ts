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
import { invalidArgument } from "./connect-errors.js";
import { eventTypeName } from "./event-message.js";
import { EventType } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { checkJobId } from "./job-id.js";
import { checkStorableString } from "./json-value.js";
import { checkName } from "./validate-job-spec.js";

/** Event type names a subscription may ask for: all but the webhook events themselves. */
const subscribableTypes = new Set(
  Object.values(EventType)
    .filter((value): value is EventType => typeof value === "number")
    .map(eventTypeName)
    .filter((name): name is string => name !== undefined && !name.startsWith("webhook_")),
);

/** The QueueService handlers of webhook subscriptions. */
export function webhookSubscriptionHandlers(db: Database, sender: WebhookSender, created: () => void) {
  return {
    async createWebhookSubscription(request: CreateWebhookSubscriptionRequest) {
      const queue = checkName(request.queue, "queue");
      if (request.url === "") throw invalidArgument("url", "is required");
      if (request.url.length > 2048) throw invalidArgument("url", "must be at most 2048 characters");
      checkStorableString(request.url, "url");
      const refused = sender.refusal(request.url);
      if (refused) throw invalidArgument("url", refused);
      if (request.secret.length < 16 || request.secret.length > 512) throw invalidArgument("secret", "must be 16 to 512 characters");
      checkStorableString(request.secret, "secret");
      const eventTypes = [...new Set(request.eventTypes)].map((type, index) => {
        if (!subscribableTypes.has(type)) throw invalidArgument(`event_types[${index}]`, "must be an event type such as succeeded");
        return type;
      });
      const row = await webhookSubscriptionInsert(db.pool, { id: uuidv7(), queue, url: request.url, eventTypes, secret: request.secret });
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
