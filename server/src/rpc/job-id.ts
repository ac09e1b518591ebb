import { invalidArgument } from "./connect-errors.js";

/** A job id (or another server-made id): a UUID in its canonical lower-case form. */
export const jobIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Checks a job id from a request, naming `field` when it is missing or malformed; returns it lower-cased. */
export function checkJobId(id: string, field: string): string {
  if (id === "") throw invalidArgument(field, "is required");
  const normalized = id.toLowerCase();
  if (!jobIdPattern.test(normalized)) throw invalidArgument(field, "must be a job id (a UUID)");
  return normalized;
}
