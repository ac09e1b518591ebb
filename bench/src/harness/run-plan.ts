import type { BenchSystem } from "../systems/bench-system.js";
import type { Workload, WorkloadContext } from "../workloads/workload.js";
import { runStopping } from "./cleanup.js";
import { labelProfiledProcesses } from "./cpu-profiles.js";

/**
 * Runs each workload in turn; within one, every repetition runs it once on each subject in
 * the same order (A B C A B C …), so that a machine that drifts (heat, another process,
 * autovacuum) weighs on every system alike. A failed run is reported loudly, recorded, and
 * the plan goes on; the cell then shows "failed".
 */
export async function runPlan(context: WorkloadContext, workloads: readonly Workload[], systems: readonly BenchSystem[]): Promise<void> {
  for (const workload of workloads) {
    const skipped = workload.skipped(context.options);
    if (skipped) {
      context.log(`${workload.id}: skipped (${skipped})`);
      continue;
    }
    const subjects = workload.systems(systems);
    const repetitions = workload.repetitions?.(context.options) ?? context.options.repetitions;
    for (let repetition = 1; repetition <= repetitions; repetition++) {
      for (const subject of subjects) {
        if (runStopping.aborted) return;
        const started = performance.now();
        labelProfiledProcesses(`${workload.id} ${repetition}/${repetitions}`);
        try {
          await workload.runOnce(context, subject);
          context.log(`${workload.id} ${repetition}/${repetitions} ${subject.label}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
        } catch (error) {
          if (runStopping.aborted) return;
          const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
          context.results.failures.push({ workload: workload.id, system: subject.id, repetition, message });
          context.log(`${workload.id} ${repetition}/${repetitions} ${subject.label}: FAILED\n${message}`);
        }
      }
    }
  }
}
