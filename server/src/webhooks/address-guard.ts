import { BlockList, isIP } from "node:net";

/**
 * Decides which IP addresses webhooks may connect to. Refused unless allow-listed:
 * loopback, private (RFC 1918), carrier-grade NAT, link-local (with the cloud metadata
 * address 169.254.169.254), "this network", unique-local and link-local IPv6, and IPv4
 * addresses hidden in IPv6 (mapped, compatible, NAT64, 6to4) whose IPv4 part is refused.
 */
export class AddressGuard {
  readonly #refused = new BlockList();
  readonly #allowed = new BlockList();

  /** `allowCidrs`: CIDRs allowed despite the rules, e.g. `["127.0.0.1/32"]` for tests. */
  constructor(allowCidrs: readonly string[] = []) {
    for (const [network, prefix] of [
      ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16],
      ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["224.0.0.0", 4], ["240.0.0.0", 4],
    ] as const) {
      this.#refused.addSubnet(network, prefix, "ipv4");
    }
    for (const [network, prefix] of [["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8]] as const) {
      this.#refused.addSubnet(network, prefix, "ipv6");
    }
    for (const cidr of allowCidrs) {
      const [network, prefix] = cidr.split("/");
      const family = isIP(network ?? "");
      if (!family || prefix === undefined || !/^\d+$/.test(prefix)) throw new Error(`not a CIDR: ${JSON.stringify(cidr)}`);
      this.#allowed.addSubnet(network!, Number(prefix), family === 4 ? "ipv4" : "ipv6");
    }
  }

  /** Why `address` may not be connected to, or undefined when it may. */
  refusal(address: string): string | undefined {
    const family = isIP(address);
    if (!family) return `${address} is not an IP address`;
    const type = family === 4 ? "ipv4" : "ipv6";
    if (this.#allowed.check(address, type)) return undefined;
    const embedded = family === 6 ? embeddedIpv4(address) : undefined;
    if (embedded !== undefined) {
      if (this.#allowed.check(embedded, "ipv4")) return undefined;
      if (this.#refused.check(embedded, "ipv4")) return `${address} embeds the non-public IPv4 address ${embedded}`;
    }
    if (this.#refused.check(address, type)) return `${address} is not a public address`;
    return undefined;
  }
}

/** The IPv4 address carried by an IPv4-mapped, -compatible, NAT64 or 6to4 IPv6 address. */
function embeddedIpv4(address: string): string | undefined {
  const words = expandIpv6(address);
  if (!words) return undefined;
  const v4 = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  const zeros = (from: number, to: number) => words.slice(from, to).every((w) => w === 0);
  if (zeros(0, 5) && (words[5] === 0xffff || words[5] === 0)) return v4(words[6]!, words[7]!); // ::ffff:a.b.c.d, ::a.b.c.d
  if (words[0] === 0x64 && words[1] === 0xff9b && zeros(2, 6)) return v4(words[6]!, words[7]!); // 64:ff9b::/96
  if (words[0] === 0x2002) return v4(words[1]!, words[2]!); // 6to4
  return undefined;
}

function expandIpv6(address: string): number[] | undefined {
  let text = address.toLowerCase().split("%")[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const parts = dotted[1]!.split(".").map(Number);
    text = text.slice(0, -dotted[1]!.length) + `${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`;
  }
  const [head, tail] = text.split("::");
  const headWords = head ? head.split(":") : [];
  const tailWords = tail ? tail.split(":") : [];
  const missing = 8 - headWords.length - tailWords.length;
  if (tail === undefined && headWords.length !== 8) return undefined;
  const words = [...headWords, ...Array(tail === undefined ? 0 : missing).fill("0"), ...tailWords].map((w) => parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}
