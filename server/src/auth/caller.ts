import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Principal } from "../jobs/principal.js";
import type { Role } from "./roles.js";

/**
 * Who is calling, as authenticated by the request gate: the principal the jobs record as
 * owner, in the namespace of its key, with the role and the key it came with.
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

/** What a caller may see of listings and streams: its namespace, and maybe one owner's things. */
export interface Scope {
  namespace: string;
  /** Only this principal's jobs, batches and events; unset: every principal's of the namespace. */
  owner?: string;
}

/**
 * The part of the data a caller may see: its namespace always; within it, producers see
 * their own principal's jobs, batches and events, admins and readers everything.
 */
export function scopeOf(caller: Caller): Scope {
  return caller.role === "producer" ? { namespace: caller.namespace, owner: caller.id } : { namespace: caller.namespace };
}

/**
 * The principal with its namespace, `namespace/principal`: a principal's name is its own
 * only within its namespace, so per-principal budgets (open streams) count by this.
 */
export function qualifiedPrincipal(caller: Caller): string {
  return `${caller.namespace}/${caller.id}`;
}

/** Reads the namespace of a call's caller from its context. */
export type NamespaceOf = (context: Pick<HandlerContext, "values">) => string;
