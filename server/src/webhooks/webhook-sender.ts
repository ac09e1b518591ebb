import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { Agent, request } from "undici";
import type { AddressGuard } from "./address-guard.js";
import { webhookHeaders } from "./signature.js";

/** How one attempt went: delivered (2xx), or why not. */
export type SendOutcome = { ok: true; status: number } | { ok: false; error: string };

/**
 * Sends signed webhook requests. Redirects are never followed (a 3xx is a failure), and
 * every address connected to is checked by the {@link AddressGuard} inside DNS resolution
 * itself, so the address checked is the address used: no window for DNS rebinding.
 */
export class WebhookSender {
  readonly #agent: Agent;

  constructor(
    private readonly guard: AddressGuard,
    private readonly timeoutMs: number,
  ) {
    const guardedLookup: LookupFunction = (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
        if (error) return callback(error, "", 0);
        const refused = addresses.map((a) => guard.refusal(a.address)).find((reason) => reason !== undefined);
        if (refused) return callback(Object.assign(new Error(`refused: ${hostname} resolves to ${refused}`), { code: "EREFUSEDADDRESS" }), "", 0);
        if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        const first = addresses[0]!;
        callback(null, first.address, first.family);
      });
    };
    this.#agent = new Agent({ connect: { lookup: guardedLookup, timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  /**
   * Why `url` may never be delivered to (not http/https, or a literal address the guard
   * refuses), or undefined. Host names are checked when they are resolved, at each attempt.
   */
  refusal(url: string): string | undefined {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return "is not a URL";
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "must be an http or https URL";
    if (parsed.username || parsed.password) return "must not carry credentials";
    const host = parsed.hostname.replace(/^\[|\]$/g, "");
    if (isIP(host)) return this.guard.refusal(host);
    return undefined;
  }

  /** POSTs `body` to `url`, signed with `secret`, with `id` as webhook-id. */
  async send(url: string, secret: string, id: string, body: string): Promise<SendOutcome> {
    const refused = this.refusal(url);
    if (refused) return { ok: false, error: `refused: ${url} ${refused}` };
    try {
      const response = await request(url, {
        method: "POST",
        dispatcher: this.#agent,
        headers: { "content-type": "application/json", "user-agent": "jobwire-webhooks", ...webhookHeaders(secret, id, Math.floor(Date.now() / 1000), body) },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await response.body.dump();
      if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, status: response.statusCode };
      return { ok: false, error: `HTTP ${response.statusCode}${response.statusCode >= 300 && response.statusCode < 400 ? " (redirects are not followed)" : ""}` };
    } catch (error) {
      return { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  }

  /**
   * Closes every connection, aborting requests still in flight: their `send` resolves with
   * a failure at once, which the caller records like any other failed attempt.
   */
  close(): Promise<void> {
    return this.#agent.destroy(new Error("aborted: the server is shutting down"));
  }
}
