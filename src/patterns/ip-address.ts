/**
 * IP addresses and CIDR blocks, read the way event-ruler reads them (it uses Java's
 * `InetAddress` behind two regular expressions), so that `cidr` and IP-looking literals match
 * what EventBridge matches.
 *
 * - An IPv4 address is four decimal parts of 0-255, without leading zeros (Java rejects those
 *   as ambiguous). An IPv6 address is hex groups with at most one `::`, no dotted tail, no zone.
 * - An IPv4-mapped IPv6 address (`::ffff:a00:1`) is the IPv4 address, as Java returns it.
 * - A CIDR block `ip/bits` covers `ip` (as written, not masked) up to `ip` with every host bit
 *   set; bits must be below 32 for IPv4 and below 128 for IPv6. These are event-ruler's rules.
 *
 * Parsing writes into a caller's `Uint32Array` so that matching allocates nothing per event.
 *
 * @module
 */

import type { IpRange } from "./pattern-types.js";

const CHAR_0 = 48;
const CHAR_9 = 57;
const CHAR_DOT = 46;
const CHAR_COLON = 58;

/** Parses an IPv4 address into `out[0]`; false when `text` is not one. */
function parseIpv4(text: string, out: Uint32Array): boolean {
  const length = text.length;
  if (length < 7 || length > 15) return false;
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  let leadingZero = false;
  for (let i = 0; i <= length; i++) {
    const code = i < length ? text.charCodeAt(i) : CHAR_DOT;
    if (code >= CHAR_0 && code <= CHAR_9) {
      if (digits === 0) leadingZero = code === CHAR_0;
      else if (leadingZero) return false;
      part = part * 10 + (code - CHAR_0);
      digits++;
      if (part > 255) return false;
    } else if (code === CHAR_DOT) {
      if (digits === 0) return false;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (parts !== 4) return false;
  out[0] = value;
  return true;
}

function hexValue(code: number): number {
  if (code >= CHAR_0 && code <= CHAR_9) return code - CHAR_0;
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

// One scratch array of the 8 groups: parsing is synchronous, so it is never shared in flight.
const groups = new Uint16Array(8);

/** Parses an IPv6 address into `out[0..3]` (big-endian 32-bit words); false when it is not one. */
function parseIpv6(text: string, out: Uint32Array): boolean {
  const length = text.length;
  if (length < 2 || length > 39) return false;
  let i = 0;
  let count = 0;
  let gapAt = -1;
  if (text.charCodeAt(0) === CHAR_COLON) {
    if (text.charCodeAt(1) !== CHAR_COLON) return false;
    gapAt = 0;
    i = 2;
  }
  while (i < length) {
    let group = 0;
    let digits = 0;
    while (i < length) {
      const hex = hexValue(text.charCodeAt(i));
      if (hex < 0) break;
      group = group * 16 + hex;
      digits++;
      i++;
    }
    if (digits === 0 || digits > 4 || count === 8) return false;
    groups[count++] = group;
    if (i === length) break;
    if (text.charCodeAt(i) !== CHAR_COLON) return false;
    i++;
    if (i < length && text.charCodeAt(i) === CHAR_COLON) {
      if (gapAt >= 0) return false;
      gapAt = count;
      i++;
    } else if (i === length) {
      return false; // a single trailing colon
    }
  }
  if (gapAt < 0) {
    if (count !== 8) return false;
  } else {
    if (count > 7) return false;
    // Move the groups after the gap to the end and zero the gap.
    const tail = count - gapAt;
    for (let k = 0; k < tail; k++) groups[7 - k] = groups[count - 1 - k]!;
    for (let k = gapAt; k < 8 - tail; k++) groups[k] = 0;
  }
  for (let k = 0; k < 4; k++) out[k] = ((groups[2 * k]! << 16) | groups[2 * k + 1]!) >>> 0;
  return true;
}

/**
 * Parses an IP address literal into `out` (length 4): IPv4 in `out[0]`, IPv6 as four
 * big-endian words. Returns the family, or 0 when `text` is not an address.
 */
export function parseIpAddress(text: string, out: Uint32Array): 0 | 4 | 6 {
  if (parseIpv4(text, out)) return 4;
  if (!parseIpv6(text, out)) return 0;
  if (out[0] === 0 && out[1] === 0 && out[2] === 0xffff) {
    out[0] = out[3]!; // IPv4-mapped: Java hands back the IPv4 address
    return 4;
  }
  return 6;
}

/** An address as a family and a bigint, or undefined when `text` is not an address. */
export function ipAddressToBigInt(text: string): { family: 4 | 6; value: bigint } | undefined {
  const words = new Uint32Array(4);
  const family = parseIpAddress(text, words);
  if (family === 0) return undefined;
  if (family === 4) return { family, value: BigInt(words[0]!) };
  let value = 0n;
  for (const word of words) value = (value << 32n) | BigInt(word);
  return { family, value };
}

/** The one-address range of an IP literal, or undefined when `text` is not an address. */
export function ipAddressRange(text: string): IpRange | undefined {
  const address = ipAddressToBigInt(text);
  return address && { family: address.family, low: address.value, high: address.value };
}

/**
 * Parses a CIDR block. Throws an `Error` whose message says what is wrong (the caller adds
 * the pattern path).
 */
export function parseCidr(text: string): IpRange {
  const slash = text.indexOf("/");
  if (slash < 0 || text.indexOf("/", slash + 1) >= 0) {
    throw new Error(`malformed CIDR ${JSON.stringify(text)}, one '/' required`);
  }
  const maskText = text.slice(slash + 1);
  if (!/^[+-]?[0-9]{1,10}$/.test(maskText)) {
    throw new Error(`malformed CIDR ${JSON.stringify(text)}, mask bits must be an integer`);
  }
  const maskBits = Number(maskText);
  if (maskBits < 0) throw new Error(`malformed CIDR ${JSON.stringify(text)}, mask bits must not be negative`);
  const address = ipAddressToBigInt(text.slice(0, slash));
  if (!address) throw new Error(`invalid IP address in CIDR ${JSON.stringify(text)}`);
  const totalBits = address.family === 4 ? 32 : 128;
  // event-ruler accepts at most 31 (IPv4) and 127 (IPv6) mask bits.
  if (maskBits >= totalBits) {
    throw new Error(`IPv${address.family} mask bits must be < ${totalBits}, got ${maskBits}`);
  }
  const hostMask = (1n << BigInt(totalBits - maskBits)) - 1n;
  return { family: address.family, low: address.value, high: address.value | hostMask };
}
