/**
 * Who is making a request. Until API keys land, every request acts as the server's
 * configured default principal, which is an admin.
 */
export interface Principal {
  /**
   * The namespace (tenant) it acts in: everything it makes is there, and nothing of
   * another namespace is visible or reachable to it.
   */
  namespace: string;
  /** Stable id, recorded as the owner of the jobs it enqueues and on the events it causes. */
  id: string;
  /** Admins may cancel and retry any job. */
  admin: boolean;
}
