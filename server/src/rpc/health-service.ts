import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@jobwire/sdk/gen/grpc/health/v1/health_pb";

/** What the health service needs to know about the server. */
export interface HealthDeps {
  /** Service names served; `""` (the whole server) is always known. */
  services: readonly string[];
  /** Whether the server can serve: database reachable and migrated, not shutting down. */
  isReady(): Promise<boolean>;
  /** Aborted when the server starts shutting down; Watch streams then report NOT_SERVING. */
  shutdownSignal: AbortSignal;
}

/** The standard `grpc.health.v1.Health` service, for ordinary gRPC probes. */
export function healthServiceImpl(deps: HealthDeps): ServiceImpl<typeof Health> {
  const known = new Set(["", ...deps.services]);
  const statusOf = async (service: string): Promise<Status> => {
    if (!known.has(service)) {
      // Echo no more of the name than a trailer can carry.
      const shown = service.length > 128 ? `${service.slice(0, 128)}…` : service;
      throw new ConnectError(`service ${JSON.stringify(shown)} is not served here`, Code.NotFound);
    }
    return (await deps.isReady()) ? Status.SERVING : Status.NOT_SERVING;
  };
  return {
    async check(request) {
      return { status: await statusOf(request.service) };
    },
    async *watch(request, context) {
      if (!known.has(request.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
      } else {
        yield { status: await statusOf(request.service) };
      }
      // Further changes: only shutdown is reported; the stream ends when either side goes.
      const done = AbortSignal.any([context.signal, deps.shutdownSignal]);
      if (!done.aborted) await new Promise((resolve) => done.addEventListener("abort", resolve, { once: true }));
      if (deps.shutdownSignal.aborted && !context.signal.aborted) yield { status: Status.NOT_SERVING };
    },
  };
}
