import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../jobs/principal.js";
import type { Role } from "./roles.js";

/**
 * Who is calling, as authenticated by the request gate: the principal the jobs record as
 * owner, with the role and the key it came with. A namespace (tenant) would be one more
 * field here, set from the key like the principal.
 */
export interface Caller extends Principal {
  role: Role;
  /** The public id of the API key used; null when authentication is off. */
  keyId: string | null;
  /** For worker keys, the queues they may lease from; empty otherwise. */
  queues: readonly string[];
}

/**
 * Where the request gate leaves the {@link Caller} for the interceptor and the handlers.
 * Its default is undefined: a handler reached without the gate having run refuses.
 */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "jobwire caller" });

/**
 * The caller of a request, as the request gate authenticated it. Throws `INTERNAL` if the
 * gate did not run: failing closed beats acting as nobody in particular.
 */
export function callerOf(context: Pick<HandlerContext, "values">): Caller {
  const caller = context.values.get(callerKey);
  if (!caller) throw new ConnectError("internal error", Code.Internal);
  return caller;
}

/**
 * The principal whose jobs alone a caller may see, or undefined when it may see all:
 * producers see their own principal's jobs, batches and events; admins and readers see
 * everything.
 */
export function ownerScopeOf(caller: Caller): string | undefined {
  return caller.role === "producer" ? caller.id : undefined;
}
