/**
 * Per-job values for a set-based statement, as the text of one JSON object keyed by job
 * id, which the statement reads row by row with `$n::jsonb -> j.id::text` (a binary search
 * in the object). `values` are JSON texts; ids must be distinct.
 *
 * Why not join `job` to an `unnest` of the same ids: beside the `j.id = ANY($1)` that keeps
 * the primary key the way in, a generic plan guesses ten rows on each side and joins them
 * in a nested loop that compares every job with every element (decision 0006). That was
 * 15 of a completion's 20 ms for 256 jobs; in this shape, reading the 256 rows with their
 * lookups takes about 1 ms.
 */
export function jsonById(ids: readonly string[], values: readonly string[]): string {
  return `{${ids.map((id, i) => `${JSON.stringify(id)}:${values[i]}`).join(",")}}`;
}

/** Splits `items` into rounds in which no id appears twice, keeping their order within each id. */
export function roundsOfDistinctIds<T>(items: readonly T[], idOf: (item: T) => string): T[][] {
  const rounds: T[][] = [];
  const seen: Set<string>[] = [];
  for (const item of items) {
    const id = idOf(item);
    let round = seen.findIndex((ids) => !ids.has(id));
    if (round < 0) {
      round = rounds.length;
      rounds.push([]);
      seen.push(new Set());
    }
    rounds[round]!.push(item);
    seen[round]!.add(id);
  }
  return rounds;
}
