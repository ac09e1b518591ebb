import type { DescMethod, DescService } from "@bufbuild/protobuf";
import fc from "fast-check";
import { Health } from "@jobwire/sdk/gen/grpc/health/v1/health_pb";
import { AdminService } from "@jobwire/sdk/gen/jobwire/v1/admin_service_pb";
import { EventService } from "@jobwire/sdk/gen/jobwire/v1/event_service_pb";
import { QueueService } from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { ScheduleService } from "@jobwire/sdk/gen/jobwire/v1/schedule_service_pb";
import { WorkerService } from "@jobwire/sdk/gen/jobwire/v1/worker_service_pb";
import { fieldHints, rpcHints } from "./field-hints.js";
import { messageArbitrary } from "./message-arbitrary.js";
import { requestHints } from "./request-hints.js";
import type { FuzzWorld } from "./world.js";

/**
 * The services the fuzzer covers: every method of each, read from the generated
 * descriptors. **Adding an RPC:** a new method in one of these services is fuzzed with no
 * edit at all (its request message is generated from its descriptor). Add a service here
 * when one is added to the server. If a field of the new RPC needs valid-looking values to
 * get past validation, name them in `field-hints.ts` (`fieldHints` by field name, or
 * `rpcHints` by `Service/Method` and field path; whole requests in `request-hints.ts` when
 * fields must agree with each other to pass); if a valid request of it would start work
 * that later writes to the database on its own (a lease, a timer, a delivery), keep its
 * valid values in a pool of their own there, as LeaseJobs and CreateWebhookSubscription do,
 * or keep its valid values harmless, as the cron expressions of ScheduleService are.
 */
export const fuzzedServices: readonly DescService[] = [QueueService, WorkerService, EventService, ScheduleService, AdminService, Health];

/** One RPC to fuzz and the generator of its request messages. */
export interface FuzzedRpc {
  readonly service: DescService;
  readonly method: DescMethod;
  /** `Service/Method`, e.g. `jobwire.v1.QueueService/Enqueue`: also the URL path. */
  readonly name: string;
  /** Init objects of the request message, for `create(method.input, init)`. */
  readonly requests: fc.Arbitrary<Record<string, unknown>>;
}

/** Every unary and server-streaming method of {@link fuzzedServices}, with its request generator. */
export function fuzzedRpcs(world: FuzzWorld): FuzzedRpc[] {
  const shared = fieldHints(world);
  const perRpc = rpcHints(world);
  const wholeRequests = requestHints(world, shared);
  return fuzzedServices.flatMap((service) =>
    service.methods.map((method) => {
      if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
        throw new Error(`${service.typeName}/${method.name} is ${method.methodKind}: teach senders.ts to send its first message`);
      }
      const name = `${service.typeName}/${method.name}`;
      const generated = messageArbitrary(method.input, { shared, rpc: perRpc[name] ?? {} });
      const whole = wholeRequests[name];
      // Where whole valid-looking requests are known (request-hints.ts), half the cases are one.
      const requests = whole ? fc.oneof(generated, whole) : generated;
      return { service, method, name, requests };
    }),
  );
}
