/**
 * Outbound safety: which addresses a delivery may connect to. A target URL is written by
 * whoever can create a rule, so without this a rule could make Relaybus POST to its own
 * admin port, to a database on the private network, or to a cloud metadata service that
 * hands out credentials (server-side request forgery).
 *
 * The check is on the address a connection is actually opened to, after DNS: a hostname is
 * judged by what it resolves to, each time a connection is opened, so a name that resolves
 * to 127.0.0.1 is loopback and a name re-pointed after a first check (DNS rebinding) is
 * judged again. {@link createGuardedConnector} does it inside undici's `connect` option, so
 * it holds for every connection the Agent opens, and checks the connected socket's remote
 * address once more before a byte of the request is written.
 *
 * @module
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { buildConnector } from "undici";
import type { OutboundConfig } from "../config/defaults.js";
import { RelaybusError } from "../errors.js";

/** What kind of address an IP address is, as far as outbound requests care. */
export const ADDRESS_CLASSES = [
  "public",
  /** 127.0.0.0/8, ::1. */
  "loopback",
  /** 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT), fc00::/7, fec0::/10, 64:ff9b:1::/48. */
  "private",
  /** 169.254/16, fe80::/10. */
  "link-local",
  /** Cloud instance metadata services, which hand out credentials. */
  "metadata",
  /** 0.0.0.0/8, ::. A connection to 0.0.0.0 reaches the local host on Linux. */
  "unspecified",
  /** 224.0.0.0/4, ff00::/8. */
  "multicast",
  /** 255.255.255.255. */
  "broadcast",
  /** Not routable on the internet: 240.0.0.0/4, documentation, benchmarking and protocol ranges. */
  "reserved",
] as const;
/** One of {@link ADDRESS_CLASSES}. */
export type AddressClass = (typeof ADDRESS_CLASSES)[number];

/** The address rules of {@link OutboundConfig} (`delivery.outbound`). */
export type OutboundPolicy = Pick<
  OutboundConfig,
  "allowLoopback" | "allowPrivate" | "allowedCidrs" | "deniedCidrs"
>;

/** Whether one address may be connected to, and why not. */
export type AddressVerdict =
  | { allowed: true; address: string; addressClass: AddressClass }
  | {
      allowed: false;
      address: string;
      /** Absent when `address` is not an IP address at all. */
      addressClass?: AddressClass;
      /** Completes "<address> is ...": what the address is and the setting that would allow it. */
      reason: string;
    };

/** A verdict that refuses. */
export type RefusedVerdict = Extract<AddressVerdict, { allowed: false }>;

/** Judges addresses against one compiled policy. */
export interface OutboundGuard {
  /** Judges one IP address (IPv4, IPv6, IPv4-mapped IPv6, with or without a zone). */
  check(address: string): AddressVerdict;
}

/**
 * A connection refused by the policy. The sender reports it as a `blocked-address` outcome,
 * which is permanent: the address will not become allowed by trying again.
 */
export class BlockedAddressError extends Error {
  /** Stable, for branching; the message is for people. */
  readonly code = "RELAYBUS_BLOCKED_ADDRESS";
  /** The host of the target URL. */
  readonly host: string;
  /** Every refused address the host resolved to (or the connected address). */
  readonly refused: readonly RefusedVerdict[];

  constructor(host: string, refused: readonly RefusedVerdict[]) {
    super(describeRefusal(host, refused));
    this.name = "BlockedAddressError";
    this.host = host;
    this.refused = refused;
  }
}

const IPV4_MAPPED_BASE = 0xffff_0000_0000n;
const LOW_32 = 0xffff_ffffn;

/** A CIDR block over the 128-bit address space (IPv4 blocks as their IPv4-mapped form). */
interface Block {
  text: string;
  base: bigint;
  /** Bits of the 128 that must equal `base`'s. */
  prefix: number;
}

/**
 * The special-purpose ranges (IANA's registries, RFC 6890), most specific first: the first
 * match decides. IPv4 ranges also catch their IPv4-mapped, IPv4-compatible, NAT64 and 6to4
 * forms, since those are judged by the IPv4 address they carry.
 */
const SPECIAL_RANGES: ReadonlyArray<[Block, AddressClass]> = (
  [
    ["0.0.0.0/8", "unspecified"],
    ["127.0.0.0/8", "loopback"],
    // AWS, GCP, Azure, Oracle and OpenStack metadata; AWS ECS task metadata; Alibaba Cloud.
    ["169.254.169.254/32", "metadata"],
    ["169.254.170.2/32", "metadata"],
    ["100.100.100.200/32", "metadata"],
    ["169.254.0.0/16", "link-local"],
    ["10.0.0.0/8", "private"],
    ["172.16.0.0/12", "private"],
    ["192.168.0.0/16", "private"],
    ["100.64.0.0/10", "private"],
    ["192.0.0.0/24", "reserved"],
    ["192.0.2.0/24", "reserved"],
    ["198.18.0.0/15", "reserved"],
    ["198.51.100.0/24", "reserved"],
    ["203.0.113.0/24", "reserved"],
    ["224.0.0.0/4", "multicast"],
    ["255.255.255.255/32", "broadcast"],
    ["240.0.0.0/4", "reserved"],
    ["::/128", "unspecified"],
    ["::1/128", "loopback"],
    ["fd00:ec2::254/128", "metadata"],
    ["fc00::/7", "private"],
    ["fec0::/10", "private"],
    ["64:ff9b:1::/48", "private"],
    ["fe80::/10", "link-local"],
    ["ff00::/8", "multicast"],
    ["100::/64", "reserved"],
    ["2001:db8::/32", "reserved"],
  ] as const
).map(([text, addressClass]) => [parseBlockOrThrow(text), addressClass]);

const IPV4_MAPPED = parseBlockOrThrow("::ffff:0:0/96");
const IPV4_COMPATIBLE = parseBlockOrThrow("::/96");
const NAT64 = parseBlockOrThrow("64:ff9b::/96");
const SIX_TO_FOUR = parseBlockOrThrow("2002::/16");

/**
 * The class of an IP address, or undefined when `text` is not one. An IPv6 address that
 * carries an IPv4 address (IPv4-mapped `::ffff:127.0.0.1`, IPv4-compatible `::127.0.0.1`,
 * NAT64 `64:ff9b::7f00:1`, 6to4 `2002:7f00:1::`) has the class of the IPv4 address: each
 * of them can reach it.
 */
export function classifyAddress(text: string): AddressClass | undefined {
  const address = parseAddress(text);
  return address === undefined ? undefined : classOf(address);
}

/**
 * Compiles `delivery.outbound` into a guard. Order of the rules: `deniedCidrs` refuses
 * whatever it covers; then `allowedCidrs` allows whatever it covers; then public addresses
 * are allowed, loopback ones if `allowLoopback`, private ones if `allowPrivate`; everything
 * else (link-local, metadata, unspecified, multicast, broadcast, reserved) is refused.
 * Throws `InvalidConfig` naming a CIDR block that does not parse.
 */
export function compileOutboundPolicy(policy: OutboundPolicy): OutboundGuard {
  const compileList = (name: "allowedCidrs" | "deniedCidrs") =>
    policy[name].map((text, index) => {
      const block = parseBlock(text);
      if (block === undefined) {
        throw new RelaybusError(
          "InvalidConfig",
          `delivery.outbound.${name}[${index}]: expected an IP address or a CIDR block such as 10.0.0.0/8 or fd00::/8, got ${JSON.stringify(text)}`,
        );
      }
      return block;
    });
  const allowed = compileList("allowedCidrs");
  const denied = compileList("deniedCidrs");

  function check(text: string): AddressVerdict {
    const address = parseAddress(text);
    if (address === undefined)
      return { allowed: false, address: text, reason: "not an IP address" };
    const addressClass = classOf(address);
    // CIDR lists match the address as connected and, for IPv6 forms of an IPv4 address,
    // that IPv4 address too, so `10.0.0.0/8` also covers `::ffff:10.1.2.3`.
    const v4 = embeddedIpv4(address);
    const forms = v4 === undefined ? [address] : [address, IPV4_MAPPED_BASE | v4];
    const deniedBy = denied.find((block) => forms.some((form) => contains(block, form)));
    if (deniedBy !== undefined) {
      return {
        allowed: false,
        address: text,
        addressClass,
        reason: `in delivery.outbound.deniedCidrs (${deniedBy.text})`,
      };
    }
    if (
      allowed.some((block) => forms.some((form) => contains(block, form))) ||
      addressClass === "public" ||
      (addressClass === "loopback" && policy.allowLoopback) ||
      (addressClass === "private" && policy.allowPrivate)
    ) {
      return { allowed: true, address: text, addressClass };
    }
    return { allowed: false, address: text, addressClass, reason: refusalReason(addressClass) };
  }

  return { check };
}

/** Options of {@link createGuardedConnector}. */
export interface GuardedConnectorOptions {
  /**
   * Resolves host names, as `dns.lookup` does (its default). Another resolver (a service
   * mesh's, or a test's) is judged the same way: by the addresses it answers.
   */
  lookup?: LookupFunction;
  /** How long opening a connection (TCP and TLS) may take. Default 10,000 ms, undici's. */
  connectTimeoutMs?: number;
}

/**
 * An undici connector (the Agent's `connect` option) that opens only connections the guard
 * allows:
 * - a host that is an IP address literal is judged before anything is sent;
 * - a host name is resolved by `lookup`, every answer judged, and only allowed addresses
 *   are tried; if none is allowed, the connection fails with {@link BlockedAddressError};
 * - once connected (after TLS, for https), the socket's remote address is judged again, so
 *   no way of resolving can slip past: a refused socket is destroyed before any request
 *   byte is written on it.
 */
export function createGuardedConnector(
  guard: OutboundGuard,
  options: GuardedConnectorOptions = {},
): buildConnector.connector {
  const resolve: LookupFunction = options.lookup ?? (dnsLookup as LookupFunction);
  const connect = buildConnector({
    timeout: options.connectTimeoutMs ?? 10_000,
    lookup: guardedLookup(guard, resolve),
  });
  return (connectOptions, callback) => {
    const { hostname } = connectOptions;
    if (isIP(hostname) !== 0) {
      const verdict = guard.check(hostname);
      if (!verdict.allowed) {
        process.nextTick(() => callback(new BlockedAddressError(hostname, [verdict]), null));
        return;
      }
    }
    connect(connectOptions, (...args) => {
      if (args[0] !== null) {
        callback(args[0], null);
        return;
      }
      const socket = args[1];
      const verdict = guard.check(socket.remoteAddress ?? "");
      if (!verdict.allowed) {
        socket.destroy();
        callback(new BlockedAddressError(hostname, [verdict]), null);
        return;
      }
      callback(null, socket);
    });
  };
}

/** A `lookup` for `net.connect` that answers only the allowed addresses `resolve` found. */
function guardedLookup(guard: OutboundGuard, resolve: LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, found) => {
      if (error !== null) {
        callback(error, options.all === true ? [] : "");
        return;
      }
      const addresses: LookupAddress[] =
        typeof found === "string" ? [{ address: found, family: isIP(found) }] : found;
      const allowed: LookupAddress[] = [];
      const refused: RefusedVerdict[] = [];
      for (const entry of addresses) {
        const verdict = guard.check(entry.address);
        if (verdict.allowed) allowed.push(entry);
        else refused.push(verdict);
      }
      const first = allowed[0];
      if (first === undefined) {
        const failure =
          refused.length === 0
            ? Object.assign(new Error(`${hostname}: no addresses`), { code: "ENOTFOUND" })
            : new BlockedAddressError(hostname, refused);
        callback(failure, options.all === true ? [] : "");
      } else if (options.all === true) {
        callback(null, allowed);
      } else {
        callback(null, first.address, first.family);
      }
    });
  };
}

function refusalReason(addressClass: AddressClass): string {
  switch (addressClass) {
    case "loopback":
      return "a loopback address; set delivery.outbound.allowLoopback: true to allow it";
    case "private":
      return "a private address; set delivery.outbound.allowPrivate: true, or list its range in delivery.outbound.allowedCidrs, to allow it";
    case "public":
      return "a public address"; // never refused by class; here for completeness
    default: {
      const article = /^[aeiou]/.test(addressClass) ? "an" : "a";
      return `${article} ${addressClass} address; list it in delivery.outbound.allowedCidrs to allow it`;
    }
  }
}

function describeRefusal(host: string, refused: readonly RefusedVerdict[]): string {
  const first = refused[0];
  if (first === undefined) return `${host}: refused`;
  if (refused.length === 1 && first.address === host) return `${host} is ${first.reason}`;
  const others = refused.slice(1).map((v) => v.address);
  const also = others.length === 0 ? "" : ` (also refused: ${others.join(", ")})`;
  return `${host} resolved to ${first.address}, ${first.reason}${also}`;
}

function classOf(address: bigint): AddressClass {
  const v4 = embeddedIpv4(address);
  const subject = v4 === undefined ? address : IPV4_MAPPED_BASE | v4;
  for (const [block, addressClass] of SPECIAL_RANGES)
    if (contains(block, subject)) return addressClass;
  return "public";
}

/** The IPv4 address an IPv6 address carries, if it is one of the forms that carry one. */
function embeddedIpv4(address: bigint): bigint | undefined {
  if (contains(IPV4_MAPPED, address) || contains(NAT64, address)) return address & LOW_32;
  // IPv4-compatible (deprecated, RFC 4291), but not :: and ::1, which are IPv6's own.
  if (contains(IPV4_COMPATIBLE, address) && address > 1n) return address & LOW_32;
  if (contains(SIX_TO_FOUR, address)) return (address >> 80n) & LOW_32;
  return undefined;
}

function contains(block: Block, address: bigint): boolean {
  const shift = BigInt(128 - block.prefix);
  return address >> shift === block.base >> shift;
}

/** An IP address as a 128-bit number (IPv4 as `::ffff:a.b.c.d`); a zone (`%eth0`) is ignored. */
function parseAddress(text: string): bigint | undefined {
  let address = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const zone = address.indexOf("%");
  if (zone !== -1) address = address.slice(0, zone);
  switch (isIP(address)) {
    case 4:
      return IPV4_MAPPED_BASE | parseIpv4(address);
    case 6:
      return parseIpv6(address);
    default:
      return undefined;
  }
}

function parseIpv4(text: string): bigint {
  return text.split(".").reduce((value, part) => (value << 8n) | BigInt(Number(part)), 0n);
}

/** Parses an address `isIP` accepted as IPv6: hex groups, at most one `::`, maybe a dotted tail. */
function parseIpv6(text: string): bigint {
  const groupsOf = (part: string): number[] =>
    part === ""
      ? []
      : part.split(":").flatMap((group) => {
          if (!group.includes(".")) return [Number.parseInt(group, 16)];
          const v4 = Number(parseIpv4(group));
          return [v4 >>> 16, v4 & 0xffff];
        });
  const gap = text.indexOf("::");
  const head = groupsOf(gap === -1 ? text : text.slice(0, gap));
  const tail = gap === -1 ? [] : groupsOf(text.slice(gap + 2));
  const zeros = new Array<number>(8 - head.length - tail.length).fill(0);
  return [...head, ...zeros, ...tail].reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

/**
 * A CIDR block (`10.0.0.0/8`, `fd00::/8`) or a single address (as /32 or /128). Host bits
 * set in the address are ignored: `10.1.2.3/8` is `10.0.0.0/8`.
 */
function parseBlock(text: string): Block | undefined {
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  if (addressText.includes("%")) return undefined;
  const version = isIP(addressText);
  if (version === 0) return undefined;
  const maxBits = version === 4 ? 32 : 128;
  const bitsText = slash === -1 ? String(maxBits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > maxBits) return undefined;
  const prefix = version === 4 ? 96 + bits : bits;
  const address = parseAddress(addressText)!;
  const shift = BigInt(128 - prefix);
  return { text, base: (address >> shift) << shift, prefix };
}

function parseBlockOrThrow(text: string): Block {
  const block = parseBlock(text);
  if (block === undefined) throw new Error(`outbound guard: bad built-in range ${text}`);
  return block;
}
