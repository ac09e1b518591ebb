/**
 * Who is making a request. Until API keys land, every request acts as the server's
 * configured default principal, which is an admin.
 */
export interface Principal {
  /** Stable id, recorded as the owner of the jobs it enqueues and on the events it causes. */
  id: string;
  /** Admins may cancel and retry any job. */
  admin: boolean;
}
