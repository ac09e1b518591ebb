import type { Dependency } from "@jobwire/sdk/gen/jobwire/v1/job_pb";
import type { DeclaredDependency, DependencyEdge, NewJob } from "../store/sql/job-insert-many.js";
import { ParentsNotFoundError } from "../jobs/job-errors.js";
import { invalidArgument } from "./connect-errors.js";
import { checkJobId } from "./job-id.js";
import { checkName } from "./validate-job-spec.js";

/** Most dependencies one job may declare. */
export const dependenciesMax = 100;


/** A dependency on a job that already exists, with the field that named it (for errors). */
export interface ExistingParent {
  jobId: string;
  field: string;
}

/** Checks a job's declared dependencies one by one (references are resolved later). */
export function checkDependencies(dependencies: readonly Dependency[], field: string): DeclaredDependency[] {
  if (dependencies.length > dependenciesMax) throw invalidArgument(field, `must have at most ${dependenciesMax} entries`);
  return dependencies.map((dependency, index) => {
    const requiresSuccess = dependency.requiresSuccess ?? true;
    switch (dependency.parent.case) {
      case "ref":
        return { ref: checkName(dependency.parent.value, `${field}[${index}].ref`), requiresSuccess };
      case "jobId":
        return { jobId: checkJobId(dependency.parent.value, `${field}[${index}].job_id`), requiresSuccess };
      default:
        throw invalidArgument(`${field}[${index}]`, "must name a ref or a job_id");
    }
  });
}

/**
 * Resolves the references of one request's jobs into edges and checks the graph: refs are
 * unique, every ref names a job of the request, no job names the same parent twice, and
 * there is no cycle. Throws INVALID_ARGUMENT naming the offending job's field; the caller
 * has written nothing yet. `field(i)` names job `i` (`jobs[i]`, or `job` for Enqueue).
 */
export function resolveJobGraph(jobs: readonly NewJob[], field: (index: number) => string): { edges: DependencyEdge[]; existingParents: ExistingParent[] } {
  const byRef = new Map<string, number>();
  jobs.forEach((job, index) => {
    if (job.ref === null) return;
    const first = byRef.get(job.ref);
    if (first !== undefined) throw invalidArgument(`${field(index)}.ref`, `duplicates the ref of ${field(first)}`);
    byRef.set(job.ref, index);
  });
  const edges: DependencyEdge[] = [];
  const existingParents: ExistingParent[] = [];
  const parentIndexes: number[][] = jobs.map(() => []);
  jobs.forEach((job, index) => {
    const seen = new Set<string>();
    job.dependsOn.forEach((dependency, position) => {
      const at = `${field(index)}.depends_on[${position}]`;
      let parentId: string;
      if (dependency.ref !== undefined) {
        const parentIndex = byRef.get(dependency.ref);
        if (parentIndex === undefined) throw invalidArgument(`${at}.ref`, `names no job of this request`);
        parentId = jobs[parentIndex]!.id;
        parentIndexes[index]!.push(parentIndex);
      } else {
        parentId = dependency.jobId;
        existingParents.push({ jobId: parentId, field: `${at}.job_id` });
      }
      if (seen.has(parentId)) throw invalidArgument(at, "repeats a parent of the same job");
      seen.add(parentId);
      edges.push({ childId: job.id, parentId, requiresSuccess: dependency.requiresSuccess });
    });
  });
  const inCycle = findCycle(parentIndexes);
  if (inCycle !== undefined) {
    const path = inCycle.map((index) => jobs[index]!.ref).join(" -> ");
    throw invalidArgument(`${field(inCycle[0]!)}.depends_on`, `forms a dependency cycle: ${path}`);
  }
  return { edges, existingParents };
}

/**
 * A cycle in the graph given as each node's parents, as the list of nodes along it (the
 * first repeated at the end), or undefined if there is none. Iterative depth-first search,
 * so a deep chain cannot overflow the stack.
 */
function findCycle(parents: readonly number[][]): number[] | undefined {
  const state = new Uint8Array(parents.length); // 0 unvisited, 1 on the current path, 2 done
  for (let root = 0; root < parents.length; root++) {
    if (state[root] !== 0) continue;
    const path: number[] = [root];
    const next: number[] = [0];
    state[root] = 1;
    while (path.length > 0) {
      const node = path[path.length - 1]!;
      const position = next[next.length - 1]!;
      const nodeParents = parents[node]!;
      if (position >= nodeParents.length) {
        state[node] = 2;
        path.pop();
        next.pop();
        continue;
      }
      next[next.length - 1] = position + 1;
      const parent = nodeParents[position]!;
      if (state[parent] === 1) return [...path.slice(path.indexOf(parent)), parent];
      if (state[parent] === 0) {
        state[parent] = 1;
        path.push(parent);
        next.push(0);
      }
    }
  }
  return undefined;
}

/**
 * Runs `insert`, turning a {@link ParentsNotFoundError} into INVALID_ARGUMENT on the field
 * that named the first missing parent.
 */
export async function parentsMustExist<T>(parents: readonly ExistingParent[], insert: () => Promise<T>): Promise<T> {
  try {
    return await insert();
  } catch (error) {
    if (!(error instanceof ParentsNotFoundError)) throw error;
    const missing = new Set(error.jobIds);
    const first = parents.find((parent) => missing.has(parent.jobId));
    throw invalidArgument(first?.field ?? "depends_on", "names no existing job");
  }
}
