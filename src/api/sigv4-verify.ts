/**
 * Server-side verification of AWS Signature Version 4 (header form), for the AWS JSON
 * protocol route: the official AWS SDKs sign every request with the credentials they are
 * given, so Relaybus-issued access keys work with them unchanged.
 *
 * No well-kept npm package verifies SigV4 on the server (the maintained ones only sign), so
 * this follows AWS's specification with node:crypto, and its tests check it against the
 * AWS SDK's own signer (`@smithy/signature-v4`):
 *
 * 1. the canonical request: method, canonical URI, canonical query, the signed headers
 *    (lower-case names, trimmed values with inner spaces collapsed), their names, and the
 *    payload's SHA-256 (the body is always hashed; an `x-amz-content-sha256` must agree);
 * 2. the string to sign: `AWS4-HMAC-SHA256`, the request time, the credential scope
 *    `date/region/service/aws4_request`, and the canonical request's SHA-256;
 * 3. the signing key: HMAC chain of `AWS4` + secret over date, region, service, `aws4_request`
 *    (cached per key, date and region: a key's requests of a day share it);
 * 4. the signature, compared in constant time.
 *
 * The request time must be within 5 minutes of the server's clock (AWS's limit), and its
 * day must be the credential scope's; the service must be `events`; any region is accepted.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { unauthorized } from "./auth-keys.js";

/** The algorithm this verifies. */
export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";
/** The service name in the credential scope. */
export const SIGV4_SERVICE = "events";
/** How far the request time may be from the server's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

const INVALID_SIGNATURE = "InvalidSignatureException";
const UNRECOGNIZED_CLIENT = "UnrecognizedClientException";
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The parts of a request the signature covers. */
export interface SignedRequest {
  method: string;
  /** The request target as received: path and query, still percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The parsed `Authorization` header. */
export interface SigV4Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/**
 * Verifies the request's signature with the secret `secretFor` gives for its access key id
 * (it throws `Unauthorized` for an unknown or unusable key). Returns what it gave on success;
 * throws `Unauthorized` naming what is missing or wrong otherwise (never a secret).
 */
export function verifySigV4<T extends { secretAccessKey: string }>(
  request: SignedRequest,
  nowMs: number,
  secretFor: (accessKeyId: string) => T,
  signingKeys: SigningKeyCache = new SigningKeyCache(),
): T {
  const credential = parseAuthorization(request.headers.authorization);
  const amzDate = headerValue(request.headers["x-amz-date"]);
  if (amzDate === undefined) throw unauthorized("X-Amz-Date: missing; SigV4 requests carry their time", INVALID_SIGNATURE);
  const timeMs = parseAmzDate(amzDate);
  if (Math.abs(nowMs - timeMs) > MAX_CLOCK_SKEW_MS) {
    throw unauthorized(
      `X-Amz-Date: signature expired or not yet valid: ${amzDate} is more than 5 minutes from the server's time ${toAmzDate(nowMs)}`,
      INVALID_SIGNATURE,
    );
  }
  if (amzDate.slice(0, 8) !== credential.date) {
    throw unauthorized(`Credential: the scope's date ${credential.date} is not the day of X-Amz-Date ${amzDate}`, INVALID_SIGNATURE);
  }
  if (credential.service !== SIGV4_SERVICE) {
    throw unauthorized(`Credential: the scope's service must be ${SIGV4_SERVICE}, got ${JSON.stringify(credential.service)}`, INVALID_SIGNATURE);
  }
  for (const required of ["host", "x-amz-date"]) {
    if (!credential.signedHeaders.includes(required)) {
      throw unauthorized(`SignedHeaders: must include ${required}`, INVALID_SIGNATURE);
    }
  }
  const found = secretFor(credential.accessKeyId);

  const payloadHash = createHash("sha256").update(request.body).digest("hex");
  const declaredHash = headerValue(request.headers["x-amz-content-sha256"]);
  if (declaredHash !== undefined && declaredHash !== payloadHash) {
    throw unauthorized("X-Amz-Content-Sha256: does not match the body (unsigned payloads are not accepted)", INVALID_SIGNATURE);
  }
  const canonical = canonicalRequest(request, credential.signedHeaders, payloadHash);
  const scope = `${credential.date}/${credential.region}/${credential.service}/aws4_request`;
  const stringToSign = `${SIGV4_ALGORITHM}\n${amzDate}\n${scope}\n${createHash("sha256").update(canonical).digest("hex")}`;
  const key = signingKeys.get(found.secretAccessKey, credential.accessKeyId, credential.date, credential.region, credential.service);
  const expected = createHmac("sha256", key).update(stringToSign).digest();
  const given = Buffer.from(credential.signature, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw unauthorized(
      "Signature: the request signature does not match the one computed with the secret access key of " +
        `${credential.accessKeyId}; check the secret and that nothing rewrote the signed headers or body`,
      INVALID_SIGNATURE,
    );
  }
  return found;
}

/**
 * Signing keys by (access key, day, region, service): one HMAC chain per key and day instead
 * of four HMACs per request. Bounded: cleared when it grows past `maxEntries`.
 */
export class SigningKeyCache {
  private readonly keys = new Map<string, Buffer>();
  constructor(private readonly maxEntries = 10_000) {}

  get(secret: string, accessKeyId: string, date: string, region: string, service: string): Buffer {
    // The secret is part of the key, so a replaced secret never meets an old signing key.
    const id = `${accessKeyId}\n${date}\n${region}\n${service}\n${createHash("sha256").update(secret).digest("base64")}`;
    let key = this.keys.get(id);
    if (key === undefined) {
      key = deriveSigningKey(secret, date, region, service);
      if (this.keys.size >= this.maxEntries) this.keys.clear();
      this.keys.set(id, key);
    }
    return key;
  }
}

/** The SigV4 signing key: HMAC-SHA256 chained over date, region, service and `aws4_request`. */
export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  let key: Buffer = createHmac("sha256", `AWS4${secret}`).update(date).digest();
  for (const part of [region, service, "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
  return key;
}

/** Parses `AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex`. */
export function parseAuthorization(header: string | undefined): SigV4Credential {
  if (header === undefined || header.trim() === "") {
    throw unauthorized(
      "Authorization: missing; the AWS protocol route needs a SigV4 signature made with a Relaybus access key (relaybus keys create)",
      UNRECOGNIZED_CLIENT,
    );
  }
  const space = header.indexOf(" ");
  const algorithm = space === -1 ? header : header.slice(0, space);
  if (algorithm !== SIGV4_ALGORITHM) {
    throw unauthorized(`Authorization: the algorithm must be ${SIGV4_ALGORITHM}, got ${JSON.stringify(algorithm.slice(0, 40))}`, INVALID_SIGNATURE);
  }
  const fields = new Map<string, string>();
  for (const part of header.slice(space + 1).split(",")) {
    const eq = part.indexOf("=");
    if (eq !== -1) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (credential === undefined || signedHeaders === undefined || signature === undefined) {
    throw unauthorized("Authorization: needs Credential, SignedHeaders and Signature", INVALID_SIGNATURE);
  }
  const scope = credential.split("/");
  if (scope.length !== 5 || scope[4] !== "aws4_request" || !/^\d{8}$/.test(scope[1]!)) {
    throw unauthorized("Authorization: Credential must be <access key id>/<yyyymmdd>/<region>/<service>/aws4_request", INVALID_SIGNATURE);
  }
  // The region keys the signing-key cache before the signature is checked: unbounded, anyone
  // who knows an access key id (not a secret) could park 10,000 header-sized regions in it.
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(scope[2]!)) {
    throw unauthorized("Authorization: the Credential's region must be 1 to 64 letters, digits, '-' or '_'", INVALID_SIGNATURE);
  }
  if (!/^[0-9a-f]{64}$/.test(signature)) {
    throw unauthorized("Authorization: Signature must be 64 lower-case hex characters", INVALID_SIGNATURE);
  }
  const names = signedHeaders.split(";");
  if (names.some((name) => name === "" || name !== name.toLowerCase())) {
    throw unauthorized("Authorization: SignedHeaders must be lower-case header names separated by ;", INVALID_SIGNATURE);
  }
  return {
    accessKeyId: scope[0]!,
    date: scope[1]!,
    region: scope[2]!,
    service: scope[3]!,
    signedHeaders: names,
    signature,
  };
}

/** The canonical request of SigV4 (the form AWS's non-S3 services use: URI segments encoded twice). */
export function canonicalRequest(request: SignedRequest, signedHeaders: readonly string[], payloadHash: string): string {
  const queryAt = request.url.indexOf("?");
  const rawPath = queryAt === -1 ? request.url : request.url.slice(0, queryAt);
  const rawQuery = queryAt === -1 ? "" : request.url.slice(queryAt + 1);
  const headerLines = signedHeaders.map((name) => {
    const value = request.headers[name];
    const text = Array.isArray(value) ? value.join(",") : (value ?? "");
    return `${name}:${text.trim().replace(/\s+/g, " ")}\n`;
  });
  return [
    request.method,
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    headerLines.join(""),
    signedHeaders.join(";"),
    payloadHash,
  ].join("\n");
}

/**
 * The path as the AWS signers make it: empty, `.` and `..` segments dropped, then the
 * (already once percent-encoded) path encoded again, `/` kept.
 */
function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const trailing = segments.length > 0 && rawPath.endsWith("/") ? "/" : "";
  return escapeUri(`/${segments.join("/")}${trailing}`).replace(/%2F/g, "/");
}

function canonicalQuery(rawQuery: string): string {
  if (rawQuery === "") return "";
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = safeDecode(eq === -1 ? part : part.slice(0, eq));
    const value = safeDecode(eq === -1 ? "" : part.slice(eq + 1));
    if (key.toLowerCase() === "x-amz-signature") continue;
    pairs.push([escapeUri(key), escapeUri(value)]);
  }
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([key, value]) => `${key}=${value}`).join("&");
}

/** RFC 3986 encoding: everything but unreserved characters. */
function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function parseAmzDate(text: string): number {
  const m = AMZ_DATE.exec(text);
  if (m === null) throw unauthorized(`X-Amz-Date: expected yyyymmddThhmmssZ, got ${JSON.stringify(text.slice(0, 40))}`, INVALID_SIGNATURE);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

function toAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}
