/**
 * Polls `check` on each turn of real work (a query, a request) until it returns a value
 * other than undefined/false, failing loudly after `timeoutMs`. For conditions that live in
 * the database, where there is no event to await; each check is a real round trip, not a
 * sleep.
 */
export async function waitFor<T>(description: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}
