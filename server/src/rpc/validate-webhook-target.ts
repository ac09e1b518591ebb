import { EventType } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import type { WebhookTarget } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type { StoredWebhookTarget } from "../store/entities/job.js";
import { invalidArgument } from "./connect-errors.js";
import { eventTypeName } from "./event-message.js";
import { checkStorableString } from "./json-value.js";
import { checkName } from "./validate-job-spec.js";

/** Why a webhook URL may never be delivered to, or undefined (see `WebhookSender.refusal`). */
export type WebhookUrlRefusal = (url: string) => string | undefined;

/** Most webhook targets one job may carry. */
export const webhookTargetsMax = 10;

const urlMaxLength = 2048;

/** Event type names a webhook may ask for: all but the webhook events themselves. */
const subscribableTypes = new Set(
  Object.values(EventType)
    .filter((value): value is EventType => typeof value === "number")
    .map(eventTypeName)
    .filter((name): name is string => name !== undefined && !name.startsWith("webhook_")),
);

/** Checks a webhook URL: present, bounded, storable, and not refused by the SSRF guard. */
export function checkWebhookUrl(url: string, field: string, refusal: WebhookUrlRefusal): string {
  if (url === "") throw invalidArgument(field, "is required");
  if (url.length > urlMaxLength) throw invalidArgument(field, `must be at most ${urlMaxLength} characters`);
  checkStorableString(url, field);
  const refused = refusal(url);
  if (refused) throw invalidArgument(field, refused);
  return url;
}

/** Checks a list of event type names a webhook asks for; returns it without duplicates. */
export function checkWebhookEventTypes(types: readonly string[], field: string): string[] {
  types.forEach((type, index) => {
    if (!subscribableTypes.has(type)) throw invalidArgument(`${field}[${index}]`, "must be an event type such as succeeded");
  });
  return [...new Set(types)];
}

/** Checks a webhook signing secret's length and encoding. */
export function checkWebhookSecret(secret: string, field: string): string {
  if (secret.length < 16 || secret.length > 512) throw invalidArgument(field, "must be 16 to 512 characters");
  checkStorableString(secret, field);
  return secret;
}

/**
 * Checks a job's webhook targets and returns them as stored, or null if there are none.
 * Whether each named secret exists is checked by the caller, against the database.
 */
export function checkWebhookTargets(targets: readonly WebhookTarget[], field: string, refusal: WebhookUrlRefusal): StoredWebhookTarget[] | null {
  if (targets.length === 0) return null;
  if (targets.length > webhookTargetsMax) throw invalidArgument(field, `must have at most ${webhookTargetsMax} entries`);
  return targets.map((target, index) => ({
    url: checkWebhookUrl(target.url, `${field}[${index}].url`, refusal),
    event_types: checkWebhookEventTypes(target.eventTypes, `${field}[${index}].event_types`),
    secret_name: checkName(target.secretName, `${field}[${index}].secret_name`),
  }));
}
