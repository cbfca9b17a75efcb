import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Ranges a request from a server should never reach unless the user allows them: the machine itself,
 * private networks, link-local (which holds cloud metadata at 169.254.169.254), carrier-grade NAT,
 * IPv6 unique-local (AWS metadata at fd00:ec2::254), multicast, and ranges reserved for
 * documentation or future use.
 */
const refusedIpv4: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

const refusedIpv6: readonly [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique-local, AWS metadata fd00:ec2::254
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed by some stacks)
  ['ff00::', 8], // multicast
];

const refused = new BlockList();
for (const [network, prefix] of refusedIpv4) refused.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of refusedIpv6) refused.addSubnet(network, prefix, 'ipv6');

/** Raised when the guard refuses an address; never retried, since the address will not change its nature. */
export class AddressRefusedError extends Error {
  override readonly name = 'AddressRefusedError';
  readonly code = 'EGRESS_ADDRESS_REFUSED';

  constructor(
    /** The host name as written in the URL. */
    readonly hostname: string,
    /** The address it resolved to. */
    readonly address: string,
  ) {
    super(hostname === address
      ? `address ${address} is loopback, private, link-local or reserved; the guard refuses it (add it to guard.allow to permit it)`
      : `host ${hostname} resolves to ${address}, a loopback, private, link-local or reserved address; the guard refuses it (add it to guard.allow to permit it)`);
  }
}

/**
 * IPv4 carried inside an IPv6 address is judged as the IPv4 address it carries, whatever the
 * spelling: IPv4-compatible `::a.b.c.d` (which the URL parser writes `::7f00:1`), IPv4-mapped
 * `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`
 * and Teredo `2001::/32` (whose client address is stored inverted).
 */
export function embeddedIpv4(address: string): string | undefined {
  const words = ipv6Words(address);
  if (!words) return undefined;
  const zeros = (from: number, to: number) => words.slice(from, to).every((word) => word === 0);
  // `::` and `::1` are IPv6's own unspecified and loopback addresses, judged as such.
  const isCompatible = zeros(0, 6) && (words[6] !== 0 || words[7]! > 1);
  const isMapped = zeros(0, 5) && words[5] === 0xffff;
  const isTranslated = zeros(0, 4) && words[4] === 0xffff && words[5] === 0;
  const isNat64 = words[0] === 0x64 && words[1] === 0xff9b && zeros(2, 6);
  if (isCompatible || isMapped || isTranslated || isNat64) return wordsToIpv4(words[6]!, words[7]!);
  if (words[0] === 0x2002) return wordsToIpv4(words[1]!, words[2]!);
  if (words[0] === 0x2001 && words[1] === 0) return wordsToIpv4(~words[6]! & 0xffff, ~words[7]! & 0xffff);
  return undefined;
}

function wordsToIpv4(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** The eight 16-bit words of an IPv6 address in any spelling (a dotted IPv4 tail, a zone), or undefined. */
export function ipv6Words(address: string): number[] | undefined {
  let text = address.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (isIP(text) !== 6) return undefined;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headWords = head ? head.split(':') : [];
  const tailWords = tail ? tail.split(':') : [];
  const missing = 8 - headWords.length - tailWords.length;
  if (tail === undefined ? headWords.length !== 8 : missing < 1) return undefined;
  const words = [...headWords, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailWords].map((word) => Number.parseInt(word, 16));
  return words.length === 8 && words.every((word) => Number.isInteger(word) && word >= 0 && word <= 0xffff) ? words : undefined;
}

/** The address in one canonical spelling: IPv4 for one carried in IPv6, IPv6 written out whole otherwise. */
export function normaliseAddress(address: string): { family: 4 | 6; address: string } | undefined {
  const bare = address.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) === 4) return { family: 4, address: bare };
  const words = ipv6Words(bare);
  if (!words) return undefined;
  const inner = embeddedIpv4(bare);
  if (inner !== undefined) return { family: 4, address: inner };
  return { family: 6, address: words.map((word) => word.toString(16)).join(':') };
}

/** Whether an IP address lies in a range the guard refuses. */
export function isRefusedAddress(address: string): boolean {
  const normal = normaliseAddress(address);
  if (normal === undefined) return true;
  if (normal.family === 4) return refused.check(normal.address, 'ipv4');
  // NAT64 local-use (RFC 8215) can reach any IPv4 address, the site's own included.
  const words = ipv6Words(normal.address)!;
  if (words[0] === 0x64 && words[1] === 0xff9b && words[2] === 1) return true;
  return refused.check(normal.address, 'ipv6');
}

/** What the guard lets through although it lies in a refused range. */
export interface AllowList {
  /** Exact host names (lower case), compared before resolution. */
  readonly hosts: ReadonlySet<string>;
  /** Host suffixes from entries like `*.internal.example.com`, with the leading dot. */
  readonly suffixes: readonly string[];
  /** Addresses and CIDR ranges. */
  readonly addresses: BlockList;
}

/**
 * Parses allow-list entries: a host name (`hooks.internal`), a wildcard (`*.internal`), an address
 * (`10.0.0.7`, `::1`) or a CIDR range (`10.0.0.0/8`, `fd00::/8`). Returns the entry that is not one.
 */
export function parseAllowList(entries: readonly string[]): AllowList | { invalid: string } {
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  const addresses = new BlockList();
  for (const raw of entries) {
    if (typeof raw !== 'string' || raw.trim() === '') return { invalid: String(raw) };
    const entry = raw.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
    const slash = entry.indexOf('/');
    if (slash >= 0) {
      const network = entry.slice(0, slash);
      const prefix = Number(entry.slice(slash + 1));
      const family = isIP(network);
      const widest = family === 4 ? 32 : 128;
      if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > widest) return { invalid: raw };
      addresses.addSubnet(network, prefix, family === 4 ? 'ipv4' : 'ipv6');
    } else if (isIP(entry) !== 0) {
      addresses.addAddress(entry, isIP(entry) === 4 ? 'ipv4' : 'ipv6');
    } else if (entry.startsWith('*.') && /^[a-z0-9.-]+$/.test(entry.slice(2))) {
      suffixes.push(entry.slice(1));
    } else if (/^[a-z0-9.-]+$/.test(entry)) {
      hosts.add(entry.replace(/\.$/, ''));
    } else {
      return { invalid: raw };
    }
  }
  return { hosts, suffixes, addresses };
}

function hostAllowed(hostname: string, allow: AllowList): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return allow.hosts.has(host) || allow.suffixes.some((suffix) => host.endsWith(suffix));
}

function addressAllowed(address: string, allow: AllowList): boolean {
  const bare = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 0) return false;
  if (allow.addresses.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return true;
  const normal = normaliseAddress(bare);
  return normal !== undefined && allow.addresses.check(normal.address, normal.family === 4 ? 'ipv4' : 'ipv6');
}

/** Checks one host as the connector is about to reach it; returns the refusal, if any. */
export function checkAddress(hostname: string, address: string, allow: AllowList): AddressRefusedError | undefined {
  if (hostAllowed(hostname, allow) || addressAllowed(address, allow)) return undefined;
  return isRefusedAddress(address) ? new AddressRefusedError(hostname, address) : undefined;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `dns.lookup` replacement for the socket connector: resolves as usual, then refuses the
 * connection when any resolved address is refused. Checking after resolution, on the very
 * addresses the socket will use, is what stops a host name (or a DNS rebinding) from smuggling in
 * an internal address. One bad address refuses them all, so a mixed answer cannot race through.
 */
export function guardedLookup(allow: AllowList) {
  return function lookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) {
        callback(error, options.all ? [] : '');
        return;
      }
      for (const { address } of addresses) {
        const refusal = checkAddress(hostname, address, allow);
        if (refusal) {
          callback(refusal as NodeJS.ErrnoException, options.all ? [] : '');
          return;
        }
      }
      if (options.all) {
        callback(null, addresses);
        return;
      }
      const first = addresses[0];
      if (!first) {
        callback(Object.assign(new Error(`no address found for ${hostname}`), { code: 'ENOTFOUND' }), '');
        return;
      }
      callback(null, first.address, first.family);
    });
  };
}
