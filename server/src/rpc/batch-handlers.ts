import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import {
  BatchSchema,
  JobGraphEdgeSchema,
  JobGraphNodeSchema,
  type Batch,
  type CancelBatchRequest,
  type GetBatchRequest,
  type GetJobGraphRequest,
  type ListBatchesRequest,
} from "@jobwire/sdk/gen/jobwire/v1/queue_service_pb";
import { cancelBatch } from "../jobs/cancel-batch.js";
import { jobLimits } from "../jobs/defaults.js";
import { BatchNotFoundError } from "../jobs/job-errors.js";
import { scopeOf, type Caller } from "../auth/caller.js";
import type { Database } from "../store/orm.js";
import { batchGraph, batchSelect, batchSelectPage, type BatchFilter, type BatchRow } from "../store/sql/batch.js";
import type { RequestedCancel } from "../store/sql/job-cancel.js";
import { invalidArgument } from "./connect-errors.js";
import { checkJobId, jobIdPattern } from "./job-id.js";
import { jobStateMessage } from "./job-message.js";
import { checkStorableString } from "./json-value.js";
import { decodePageToken, encodePageToken, filterFingerprint } from "./page-token.js";
import { rfc3339FromTimestamp } from "./proto-time.js";

/** What the batch handlers need from the QueueService's dependencies. */
export interface BatchHandlerDeps {
  db: Database;
  principalOf(context: Pick<HandlerContext, "values">): Caller;
  /** Called after a commit that requested the cancel of a running job: tell its worker. */
  cancelRequested(lease: { workerId: string; leaseToken: string }, jobId: string, reason: string): void;
  /** Called after any other commit that wrote events. */
  eventsCommitted(): void;
}

const terminalStates = new Set(["succeeded", "failed", "cancelled"]);

/** The QueueService handlers of batches: GetBatch, ListBatches, CancelBatch, GetJobGraph. */
export function batchHandlers(deps: BatchHandlerDeps) {
  const { db } = deps;
  return {
    async getBatch(request: GetBatchRequest) {
      const id = checkJobId(request.id, "id");
      const batch = await batchSelect(db.pool, id);
      if (!batch) throw new BatchNotFoundError(id);
      return { batch: batchMessage(batch) };
    },

    async listBatches(request: ListBatchesRequest, context: HandlerContext) {
      const filter: BatchFilter = {
        ...scopeOf(deps.principalOf(context)),
        finished: request.finished,
        createdAfter: request.createdAfter ? rfc3339FromTimestamp(request.createdAfter, "created_after") : undefined,
        createdBefore: request.createdBefore ? rfc3339FromTimestamp(request.createdBefore, "created_before") : undefined,
      };
      const pageSize = request.pageSize || jobLimits.pageSizeDefault;
      if (pageSize < 1 || pageSize > jobLimits.pageSizeMax) throw invalidArgument("page_size", `must be between 0 and ${jobLimits.pageSizeMax}`);
      const fingerprint = filterFingerprint({ batches: filter });
      const after = request.pageToken ? decodePageToken(request.pageToken, fingerprint, jobIdPattern, "ListBatches") : undefined;
      const rows = await batchSelectPage(db.pool, filter, pageSize + 1, after);
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        batches: page.map(batchMessage),
        nextPageToken: rows.length > pageSize && last ? encodePageToken(last.id, fingerprint) : "",
      };
    },

    async cancelBatch(request: CancelBatchRequest, context: HandlerContext) {
      const id = checkJobId(request.id, "id");
      if (request.reason.length > jobLimits.reasonMaxLength) throw invalidArgument("reason", `must be at most ${jobLimits.reasonMaxLength} characters`);
      checkStorableString(request.reason, "reason");
      const outcome = await cancelBatch(db, deps.principalOf(context), id, request.reason);
      outcome.requests.forEach((requested: RequestedCancel) => deps.cancelRequested(requested, requested.jobId, requested.reason));
      deps.eventsCommitted();
      return { cancelled: outcome.cancelled, cancelRequested: outcome.requests.length, alreadyFinished: outcome.alreadyFinished };
    },

    async getJobGraph(request: GetJobGraphRequest) {
      const id = checkJobId(request.batchId, "batch_id");
      if (!(await batchSelect(db.pool, id))) throw new BatchNotFoundError(id);
      const graph = await batchGraph(db.pool, id);
      return {
        nodes: graph.nodes.map((node) =>
          create(JobGraphNodeSchema, { jobId: node.id, ref: node.ref ?? "", queue: node.queue, kind: node.kind, state: jobStateMessage(node.state), inBatch: node.inBatch }),
        ),
        edges: graph.edges.map((edge) => create(JobGraphEdgeSchema, edge)),
      };
    },
  };
}

function batchMessage(row: BatchRow): Batch {
  const counts = Object.entries(row.counts);
  const finished = counts.filter(([state]) => terminalStates.has(state)).reduce((sum, [, n]) => sum + (n ?? 0), 0);
  return create(BatchSchema, {
    id: row.id,
    owner: row.owner,
    total: row.total,
    counts: Object.fromEntries(counts.map(([state, n]) => [state.toUpperCase(), n ?? 0])),
    progress: row.total === 0 ? 0 : finished / row.total,
    createdAt: timestampFromDate(row.createdAt),
    finishedAt: row.finishedAt ? timestampFromDate(row.finishedAt) : undefined,
  });
}
