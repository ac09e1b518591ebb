import { RoleProcess } from "../harness/role-process.js";
import type { BenchSystem, Deployment } from "../systems/bench-system.js";
import type { WorkloadContext } from "./workload.js";

/**
 * Deploys `system` fresh for `workload`, runs `body` with the deployment, and always tears it
 * down, with any role processes `body` registered through `track`.
 */
export async function withDeployment<T>(
  context: WorkloadContext,
  system: BenchSystem,
  options: { workload: string; replicas?: number },
  body: (deployment: Deployment, track: (role: RoleProcess) => RoleProcess) => Promise<T>,
): Promise<T> {
  const roles: RoleProcess[] = [];
  const deployment = await system.deploy(context.environment, options);
  try {
    return await body(deployment, (role) => (roles.push(role), role));
  } finally {
    await Promise.all(roles.map((role) => role.stop()));
    await deployment.close();
  }
}

/** Starts `system`'s producer process; it is usable after {@link connectProducer}. */
export function spawnProducer(system: BenchSystem): RoleProcess {
  return RoleProcess.start(`${system.label} producer`, system.producerScript);
}

/** Starts `system`'s worker process; it takes jobs after a `start` command. */
export function spawnWorker(system: BenchSystem, name = "worker"): RoleProcess {
  return RoleProcess.start(`${system.label} ${name}`, system.workerScript);
}

/** Waits for the producer to load, then connects it to the deployment (installing schemas). */
export async function connectProducer(producer: RoleProcess, deployment: Deployment): Promise<void> {
  await producer.loaded();
  await producer.request({ cmd: "connect", endpoint: deployment.producerEndpoint() }, "connected", 60_000);
}

/** A loud bound for enqueueing or draining `jobs`: 30 s plus 10 ms a job (100 jobs/s). */
export function boundFor(jobs: number): number {
  return 30_000 + jobs * 10;
}
