/**
 * A queue as wake-ups and dispatchers name it: its namespace and name, `namespace/queue`.
 * Queue names are unique only within a namespace, so a bare name could wake the workers
 * of another tenant's queue of the same name. Neither part can hold a `/` (the
 * `namespace_name` domain and `queue_name_format`), so the pair reads back unambiguously;
 * the NOTIFY payloads between replicas carry it as it is.
 */
export type QueueAddress = string & { readonly __queueAddress: unique symbol };

/** The address of queue `queue` of `namespace`. */
export function queueAddress(namespace: string, queue: string): QueueAddress {
  return `${namespace}/${queue}` as QueueAddress;
}

/** The addresses of rows that name their namespace and queue, once each. */
export function queueAddressesOf(rows: Iterable<{ namespace: string; queue: string }>): Set<QueueAddress> {
  const addresses = new Set<QueueAddress>();
  for (const row of rows) addresses.add(queueAddress(row.namespace, row.queue));
  return addresses;
}
