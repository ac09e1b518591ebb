import { invalidArgument } from "../rpc/connect-errors.js";

/**
 * The namespace of everything made before namespaces existed, and of every caller while
 * authentication is off.
 */
export const defaultNamespace = "default";

/** A namespace's name: the `namespace_name` domain of migration 0015. */
export const namespacePattern = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** Checks a namespace name (`INVALID_ARGUMENT` naming `field`). */
export function checkNamespace(name: string, field: string): string {
  if (!namespacePattern.test(name)) {
    throw invalidArgument(field, "must be 1 to 63 lower-case letters or digits or the marks dot underscore hyphen and start with a letter or digit");
  }
  return name;
}
