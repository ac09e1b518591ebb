import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import { connectErrorFrom } from "../rpc/connect-errors.js";
import { jobIdPattern } from "../rpc/job-id.js";
import { batchFirstOutsideScope, jobFirstOutsideQueues, jobFirstOutsideScope } from "../store/sql/ownership.js";
import type { Queryable } from "../store/transaction.js";
import type { Authenticator } from "./authenticator.js";
import { ruleFor, type MethodRule } from "./authorization-table.js";
import { callerKey, scopeOf, type Caller } from "./caller.js";
import type { LiveStreams } from "./live-streams.js";

/** What {@link accessControl} needs. */
export interface AccessControlDeps {
  authenticator: Authenticator;
  /** For the checks of what a request names (ownership, a worker's queues). */
  db: Queryable;
  /** Ends streams whose key is revoked or expires while they run. */
  liveStreams: LiveStreams;
  log: Logger;
}

/** The two halves of access control, for `connectNodeAdapter`. */
export interface AccessControl {
  /**
   * Runs on every RPC once its headers are in, before its body is read: finds the RPC's
   * rule in the authorization table (none: `PERMISSION_DENIED`, fail closed),
   * authenticates the caller (`UNAUTHENTICATED`), checks its role (`PERMISSION_DENIED`)
   * and leaves the {@link Caller} in the context for the handlers.
   */
  requestGate(context: HandlerContext): Promise<void>;
  /**
   * Checks what a parsed request names against its rule: jobs and batches must be of the
   * caller's namespace, and a producer's its own; a worker's queues and leased jobs those
   * of its key. A server stream
   * ended because its key was revoked or expired ends with that `UNAUTHENTICATED`.
   */
  interceptor: Interceptor;
  /**
   * A signal that aborts when `caller`'s key is revoked or expires before `callEnded`
   * aborts (never, with authentication off): for long-lived calls outside Connect (SSE).
   */
  watch(caller: Caller, callEnded: AbortSignal): AbortSignal;
  /**
   * The request gate's decision for a call that is not a Connect RPC (the SSE endpoint
   * acts as `EventService.StreamEvents`): the authenticated caller, or a thrown
   * `UNAUTHENTICATED` / `PERMISSION_DENIED`; undefined for a public RPC.
   */
  authorize(service: string, method: string, authorization: string | null): Promise<Caller | undefined>;
}

/** The request gate and the interceptor that enforce the authorization table. */
export function accessControl(deps: AccessControlDeps): AccessControl {
  const { authenticator, db, liveStreams, log } = deps;
  const never = new AbortController().signal;
  const watch = (caller: Caller, callEnded: AbortSignal) => (caller.keyId === null ? never : liveStreams.watch(caller.keyId, callEnded));
  const authorize = async (service: string, method: string, authorization: string | null): Promise<Caller | undefined> => {
    const rpc = rpcName(service, method);
    const rule = ruleFor(service, method);
    if (!rule) {
      log.error({ rpc }, "refused an RPC that is missing from the authorization table");
      throw new ConnectError(`${rpc} is not in the authorization table`, Code.PermissionDenied);
    }
    if (rule.allow === "public") return undefined;
    try {
      const caller = await authenticator.authenticate(authorization);
      if (!rule.allow.includes(caller.role)) throw new ConnectError(`role ${caller.role} may not call ${rpc}`, Code.PermissionDenied);
      return caller;
    } catch (error) {
      const refusal = connectErrorFrom(error, log);
      log.info({ rpc, code: Code[refusal.code], reason: refusal.rawMessage }, "refused a request");
      throw refusal;
    }
  };
  return {
    authorize,
    watch,

    async requestGate(context) {
      const caller = await authorize(context.service.typeName, context.method.name, context.requestHeader.get("authorization"));
      if (!caller) return;
      context.values.set(callerKey, caller);
      if (context.method.methodKind !== "unary" && caller.keyId !== null) context.values.set(revokedKey, watch(caller, context.signal));
    },

    interceptor: (next) => async (request) => {
      const rule = ruleFor(request.service.typeName, request.method.name);
      const caller = request.contextValues.get(callerKey);
      let forwarded = request;
      if (rule && rule.allow !== "public" && caller && hasMessageChecks(rule)) {
        const check = (message: unknown) => checkMessage(db, rule, caller, message);
        if (request.stream) forwarded = { ...request, message: checkedEach(request.message, check) };
        else await check(request.message);
      }
      const revoked = request.contextValues.get(revokedKey);
      // The handler's signal (its `context.signal`) aborts when the key goes, too.
      if (revoked) forwarded = { ...forwarded, signal: AbortSignal.any([request.signal, revoked]) };
      const response = await next(forwarded);
      if (!response.stream || !revoked) return response;
      return { ...response, message: endedByRevocation(response.message, revoked) };
    },
  };
}

/** Where the request gate leaves a stream's revocation signal for the interceptor. */
const revokedKey = createContextKey<AbortSignal | undefined>(undefined, { description: "jobwire key revoked" });

/**
 * A handler ends its stream quietly when its call is aborted; when the abort was the
 * key's revocation or expiry, the client is told so.
 */
async function* endedByRevocation<T>(messages: AsyncIterable<T>, revoked: AbortSignal): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    if (revoked.aborted) throw revoked.reason;
    throw error;
  }
  if (revoked.aborted) throw revoked.reason;
}

/** `QueueService.Enqueue`: the service's short name and the method, for messages and logs. */
function rpcName(service: string, method: string): string {
  return `${service.slice(service.lastIndexOf(".") + 1)}.${method}`;
}

function hasMessageChecks(rule: MethodRule<unknown>): boolean {
  return rule.jobs !== undefined || rule.batches !== undefined || rule.parentJobs !== undefined || rule.workerQueues !== undefined || rule.workerJobs !== undefined;
}

async function* checkedEach<T>(messages: AsyncIterable<T>, check: (message: T) => Promise<void>): AsyncIterable<T> {
  for await (const message of messages) {
    await check(message);
    yield message;
  }
}

async function checkMessage(db: Queryable, rule: MethodRule<unknown>, caller: Caller, message: unknown): Promise<void> {
  const scope = scopeOf(caller);
  // What a producer may not touch is PERMISSION_DENIED, whether it exists or not; for
  // the other roles, what is not in their namespace does not exist.
  const refusal = (what: "job" | "batch", id: string) =>
    caller.role === "producer" ? permissionDenied(what, id) : new ConnectError(`${what} ${id} not found`, Code.NotFound);
  const jobs = wellFormedIds(rule.jobs?.(message));
  const outsideJob = jobs.length > 0 ? await jobFirstOutsideScope(db, jobs, scope) : undefined;
  if (outsideJob) throw refusal("job", outsideJob);
  const batches = wellFormedIds(rule.batches?.(message));
  const outsideBatch = batches.length > 0 ? await batchFirstOutsideScope(db, batches, scope) : undefined;
  if (outsideBatch) throw refusal("batch", outsideBatch);
  if (caller.role === "producer") {
    const parents = wellFormedIds(rule.parentJobs?.(message));
    const notOwnedParent = parents.length > 0 ? await jobFirstOutsideScope(db, parents, scope) : undefined;
    if (notOwnedParent) throw permissionDenied("job", notOwnedParent);
  }
  const workerQueues = caller.role === "worker" ? caller.queues : null;
  for (const queue of workerQueues ? (rule.workerQueues?.(message) ?? []) : []) {
    if (!workerQueues!.includes(queue)) throw new ConnectError(`API key ${caller.keyId} may not lease from queue ${queue}`, Code.PermissionDenied);
  }
  const leased = wellFormedIds(rule.workerJobs?.(message));
  const outsideLease = leased.length > 0 ? await jobFirstOutsideQueues(db, leased, caller.namespace, workerQueues) : undefined;
  if (outsideLease) throw permissionDenied("job", outsideLease);
}

/**
 * The ids that are well-formed, lower-cased as the handlers read them, once each.
 * Malformed ones cannot name anything; the handler refuses them with `INVALID_ARGUMENT`.
 */
function wellFormedIds(ids: Iterable<string> | undefined): string[] {
  const wellFormed = new Set<string>();
  for (const id of ids ?? []) {
    const normalized = id.toLowerCase();
    if (jobIdPattern.test(normalized)) wellFormed.add(normalized);
  }
  return [...wellFormed];
}

/** The same words as the domain's NotJobOwnerError: nothing tells "not yours" from "none". */
function permissionDenied(what: "job" | "batch", id: string): ConnectError {
  return new ConnectError(`permission denied on ${what} ${id}`, Code.PermissionDenied);
}
