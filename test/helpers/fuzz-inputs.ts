/**
 * fast-check arbitraries of hostile HTTP requests for Relaybus, one family per kind of route:
 * PutEvents (REST and AWS protocol), CloudEvents in binary, structured and batch mode, event
 * patterns, rules with JSONata transforms, and every other route of `openapi.yaml` with
 * hostile path parameters, query strings and bodies.
 *
 * Sizes are drawn as numbers and built with `repeat`, never as fast-check strings: a 300 KB
 * string generated character by character would cost more than sending it.
 *
 *     const requests = fuzzRequestArbitrary(context);
 *     fc.assert(fc.asyncProperty(fc.array(requests), ...));
 */
import fc from "fast-check";
import { contractRoutes, requestBodies, type ContractRoute } from "./openapi.js";

/** One request to send. `template` is the route of `openapi.yaml` it aims at, if any. */
export interface FuzzRequest {
  /** Which arbitrary made it, for the statistics and failure messages. */
  family: string;
  method: string;
  /** The openapi path template the request follows (hostile parameters included), if any. */
  template: string | undefined;
  /** Raw path and query, sent as is. */
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** Sign for the AWS protocol route (SigV4) before sending. */
  sign?: boolean;
}

/** Names and limits of the service under test, so that some inputs land on real things. */
export interface FuzzContext {
  buses: readonly string[];
  rules: readonly string[];
  targets: readonly string[];
  /** Ids that exist: key ids, event ids, dead letter ids, archive and replay names. */
  ids: readonly string[];
  limits: {
    maxRequestBytes: number;
    maxEventBytes: number;
    maxEntriesPerRequest: number;
    maxJsonDepth: number;
    maxPatternBytes: number;
    maxTransformBytes: number;
  };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

/** Strings that trip parsers and lookups: prototype keys, numbers as text, separators. */
const NASTY_STRINGS = [
  "",
  " ",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "null",
  "undefined",
  "NaN",
  "-1",
  "0",
  "1e309",
  "9007199254740993",
  "true",
  "*",
  "**",
  "%",
  "%00",
  "\u0000",
  "\ud800",
  "\udfff\ud800",
  "\u202e",
  "\ufeff",
  "😀",
  "a\nb",
  "../../etc/passwd",
  "<script>alert(1)</script>",
  "' OR 1=1 --",
  "${jndi:ldap://x}",
  "{{7*7}}",
  "2026-13-45T25:61:61Z",
  "0000-00-00T00:00:00Z",
  "9999-12-31T23:59:59.999999999Z",
] as const;

/** A value of any JSON type, for "wrong type" mutations, weighted toward the nasty ones. */
const wrongValue: fc.Arbitrary<Json> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<Json>(
      null,
      true,
      false,
      0,
      -1,
      -0,
      1.5,
      1e308,
      -1e308,
      2 ** 53 + 2,
      [],
      {},
      [null],
      { "": null },
    ),
  },
  { weight: 4, arbitrary: fc.constantFrom<Json>(...NASTY_STRINGS) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json> },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => "x".repeat(n)) },
);

/** Every path into a JSON value (keys and indexes), the root included. */
function pathsOf(
  value: Json,
  at: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(at);
  if (Array.isArray(value)) value.forEach((item, i) => pathsOf(item, [...at, i], out));
  else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) pathsOf(item, [...at, key], out);
  }
  return out;
}

/** `value` with the node at `path` replaced (or deleted when `replacement` is undefined). */
function setAt(
  value: Json,
  path: readonly (string | number)[],
  replacement: Json | undefined,
): Json {
  if (path.length === 0) return replacement ?? null;
  const [head, ...rest] = path;
  if (Array.isArray(value)) {
    const copy = [...value];
    if (rest.length === 0 && replacement === undefined) copy.splice(head as number, 1);
    else copy[head as number] = setAt(copy[head as number] ?? null, rest, replacement);
    return copy;
  }
  if (value !== null && typeof value === "object") {
    const copy: { [key: string]: Json } = { ...value };
    if (rest.length === 0 && replacement === undefined) delete copy[head as string];
    else copy[head as string] = setAt(copy[head as string] ?? null, rest, replacement);
    return copy;
  }
  return value;
}

/** Marks the place in a document where a raw JSON fragment (deep, wide, huge) goes. */
const HOLE = "__fuzz_hole__";

/** The document with one node swapped for `fragment`, spliced as raw JSON text. */
function withFragment(base: Json, pick: number, fragment: string): Buffer {
  const paths = pathsOf(base);
  const path = paths[pick % paths.length] ?? [];
  const text = JSON.stringify(setAt(base, path, HOLE));
  return Buffer.from(text.replace(JSON.stringify(HOLE), fragment));
}

/** Raw JSON fragments that stress the parser and the limits: deep, wide, long. */
function fragmentArbitrary(context: FuzzContext): fc.Arbitrary<string> {
  const { maxJsonDepth, maxEventBytes, maxRequestBytes } = context.limits;
  const depth = fc.constantFrom(
    maxJsonDepth - 2,
    maxJsonDepth - 1,
    maxJsonDepth,
    maxJsonDepth + 1,
    maxJsonDepth * 4,
  );
  const extremeDepth = fc.constantFrom(5_000, 100_000);
  const small = fc.oneof(
    depth.map((d) => `${"[".repeat(d)}${"]".repeat(d)}`),
    depth.map((d) => `${'{"a":'.repeat(d)}1${"}".repeat(d)}`),
    depth.map((d) => `${'[{"a":'.repeat(d)}null${"}]".repeat(d)}`),
    fc.integer({ min: 1, max: 2_000 }).map((n) => JSON.stringify("😀".repeat(n))),
    // Escapes that JSON allows and UTF-8 does not: lone surrogates, NUL.
    fc.constantFrom(
      '"\\ud800"',
      '"\\udc00\\ud800"',
      '"a\\u0000b"',
      '"\\uDBFF\\uDFFF"',
      '{"\\ud800":1}',
      '{"":{"":""}}',
    ),
    fc.constantFrom(
      "1e400",
      "-1e400",
      "1e-400",
      "123456789012345678901234567890",
      "-0",
      "0.1e1",
      "[]",
      "{}",
      "null",
    ),
    fc
      .constantFrom(maxEventBytes - 200, maxEventBytes, maxEventBytes + 1)
      .map((n) => JSON.stringify("y".repeat(n))),
  );
  const large = fc.oneof(
    extremeDepth.map((d) => `${"[".repeat(d)}${"]".repeat(d)}`),
    extremeDepth.map((d) => `${'{"a":'.repeat(d)}1${"}".repeat(d)}`),
    // Many keys, and many keys that are one key repeated (the last one wins in JSON.parse).
    fc
      .integer({ min: 100, max: 12_000 })
      .map((n) => `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(",")}}`),
    fc.integer({ min: 100, max: 12_000 }).map((n) => `{${'"k":1,'.repeat(n)}"k":2}`),
    fc.integer({ min: 100, max: 20_000 }).map((n) => `[${"0,".repeat(n)}0]`),
    // Strings just under and past the request limit.
    fc
      .constantFrom(maxRequestBytes - 100, maxRequestBytes + 10)
      .map((n) => JSON.stringify("y".repeat(n))),
  );
  return fc.oneof({ weight: 12, arbitrary: small }, { weight: 1, arbitrary: large });
}

/** Text that is not JSON, or is JSON only in some other parser's opinion. */
function brokenJsonArbitrary(base: Buffer): fc.Arbitrary<Buffer> {
  const text = base.toString("utf8");
  return fc.oneof(
    fc.nat({ max: Math.max(0, text.length - 1) }).map((at) => Buffer.from(text.slice(0, at))),
    fc
      .tuple(
        fc.nat({ max: text.length }),
        fc.constantFrom(
          "{",
          "}",
          "[",
          "]",
          ",",
          ":",
          '"',
          "\\",
          "\u0000",
          "\n",
          "'",
          "NaN",
          "Infinity",
          "undefined",
          "//",
          "/*",
        ),
      )
      .map(([at, insert]) => Buffer.from(`${text.slice(0, at)}${insert}${text.slice(at)}`)),
    fc
      .constantFrom(
        "",
        " ",
        "{",
        "}",
        "{{}}",
        "[",
        '{"a":1,}',
        "[1,]",
        "{'a':1}",
        "{a:1}",
        '{"a":NaN}',
        '{"a":Infinity}',
        '{"a":01}',
        '{"a":"\t"}',
        '{"a":"\\x41"}',
        '{"a":1}{"b":2}',
        '{"a":1} trailing',
        '{"a":1 /* comment */}',
        "\u0000",
        "null",
        "true",
        "42",
        '"string"',
      )
      .map((t) => Buffer.from(t)),
  );
}

/** The same document in encodings Relaybus does not take (or takes only some of). */
function oddEncodingArbitrary(base: Buffer): fc.Arbitrary<Buffer> {
  const text = base.toString("utf8");
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  return fc.oneof(
    fc.constant(Buffer.concat([bom, base])),
    fc.constant(Buffer.from(text, "utf16le")),
    fc.constant(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")])),
    fc.constant(Buffer.from(text, "latin1")),
    fc
      .tuple(
        fc.nat({ max: Math.max(0, base.length) }),
        fc.constantFrom(
          [0xff],
          [0xfe, 0xff],
          [0xc0, 0xaf],
          [0xe0, 0x80, 0xaf],
          [0xed, 0xa0, 0x80],
          [0xf4, 0x90, 0x80, 0x80],
          [0xf8, 0x88, 0x80, 0x80, 0x80],
          [0x80],
          [0xc3],
          [0x00],
        ),
      )
      .map(([at, bytes]) =>
        Buffer.concat([base.subarray(0, at), Buffer.from(bytes), base.subarray(at)]),
      ),
    fc.uint8Array({ minLength: 0, maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  );
}

/** Content types: JSON ones, near misses and garbage. */
const jsonContentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant("application/json") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "application/json; charset=utf-8",
      "application/json; charset=utf-16",
      "application/json; charset=latin1",
      "APPLICATION/JSON",
      "application/jsonx",
      "application/merge-patch+json",
      "application/x-amz-json-1.1",
      "text/plain",
      "text/json",
      "application/xml",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/octet-stream",
      "",
      "*/*",
      ";;;",
      "application/json; charset=\u00ff",
      "application/cloudevents+json",
      "application/cloudevents-batch+json",
    ),
  },
);

/**
 * A body for a route that takes JSON: a valid example, the example with one field given a
 * wrong type (or deleted, or a stray key added), the example with a deep, wide or long
 * fragment spliced in, broken JSON, an odd encoding, or any JSON value at all.
 */
function bodyArbitrary(
  examples: readonly Json[],
  context: FuzzContext,
): fc.Arbitrary<Buffer | undefined> {
  const base: readonly Json[] = examples.length > 0 ? examples : [{}];
  const example = fc.constantFrom(...base);
  const mutated = fc
    .tuple(
      example,
      fc.nat(),
      wrongValue,
      fc.constantFrom("replace", "replace", "delete", "add", "proto"),
    )
    .map(([doc, pick, value, op]) => {
      const paths = pathsOf(doc);
      const path = paths[pick % paths.length] ?? [];
      if (op === "delete") return json(setAt(doc, path, undefined));
      if (op === "add") return json(setAt(doc, [...path, `stray${pick % 7}`], value));
      if (op === "proto") {
        // A literal "__proto__" key: JSON.parse makes it an own property, a spread does not.
        const text = JSON.stringify(setAt(doc, path, HOLE));
        return Buffer.from(
          text.replace(
            JSON.stringify(HOLE),
            `{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}`,
          ),
        );
      }
      return json(setAt(doc, path, value));
    });
  return fc.oneof(
    { weight: 3, arbitrary: example.map(json) },
    { weight: 6, arbitrary: mutated },
    {
      weight: 3,
      arbitrary: fc
        .tuple(example, fc.nat(), fragmentArbitrary(context))
        .map(([doc, pick, fragment]) => withFragment(doc, pick, fragment)),
    },
    { weight: 2, arbitrary: example.chain((doc) => brokenJsonArbitrary(json(doc))) },
    { weight: 2, arbitrary: example.chain((doc) => oddEncodingArbitrary(json(doc))) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map(json) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

/** Percent-encodes the UTF-8 bytes of `text` (lone surrogates become U+FFFD, as TextEncoder does). */
function percentEncodeUtf8(text: string): string {
  return [...new TextEncoder().encode(text)]
    .map((b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`)
    .join("");
}

/** Characters a raw path segment may carry on the wire (undici refuses the rest). */
const PATH_CHARS = "abcXYZ019-_.~!$&'()*+,;=:@%?#[]{}|^`\"<>\\".split("");

// Shared instances: fast-check builds a reverse table of every code point the first time it
// shrinks a "binary" string, once per arbitrary, and there is one segment arbitrary per route.
const unicodeSegment = fc
  .string({ unit: "binary", minLength: 1, maxLength: 30 })
  .map(percentEncodeUtf8);
const wireCharsSegment = fc.string({
  unit: fc.constantFrom(...PATH_CHARS),
  minLength: 1,
  maxLength: 40,
});

/** A value for a `{parameter}` of a path: a real name, or something hostile, encoded for the wire. */
export function pathSegmentArbitrary(known: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...known).map(encodeURIComponent) },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        "..",
        ".",
        "%2e%2e",
        "%2E",
        "%",
        "%%",
        "%zz",
        "%f",
        "%ff%fe",
        "%00",
        "%C0%AF",
        "%ED%A0%80",
        "%F4%90%80%80",
        "%2F",
        "a%2Fb",
        "..%2F..%2Fetc",
        "%252F",
        ":",
        ":enable",
        "default:disable",
        "x:dry-run",
        "%E2%80%AE",
        "__proto__",
        "constructor",
        "hasOwnProperty",
        "NaN",
        "-1",
        "1e309",
        "2026-13",
        "0000-00",
        "%20",
        "+",
        "~",
      ),
    },
    { weight: 2, arbitrary: fc.integer({ min: 65, max: 9_000 }).map((n) => "n".repeat(n)) },
    { weight: 2, arbitrary: unicodeSegment },
    { weight: 2, arbitrary: wireCharsSegment },
  );
}

/** Query parameter names the routes read, and some they do not. */
const QUERY_NAMES = [
  "after",
  "before",
  "bus",
  "force",
  "format",
  "from",
  "granularity",
  "groupBy",
  "limit",
  "to",
  "rule",
  "target",
  "id",
  "x",
  "__proto__",
  "limit[]",
  "a[b]",
];

/** A query string: nothing, or hostile values for the parameters the routes read. */
const queryArbitrary: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constant("") },
  {
    weight: 2,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.constantFrom(...QUERY_NAMES),
          fc.oneof(
            fc.constantFrom(
              "",
              "1",
              "0",
              "-1",
              "1000",
              "1001",
              "1e3",
              "1e309",
              "NaN",
              "true",
              "false",
              "yes",
              "day",
              "month",
              "hour",
              "csv",
              "json",
              "html",
              "bus",
              "rule",
              "target",
              "2026-01-01",
              "2026-01-01T00:00:00Z",
              "9999999999999999",
              "abc",
              "%",
              "%zz",
              "%00",
              "%E2%80%AE",
            ),
            fc.integer({ min: 1, max: 5_000 }).map((n) => "9".repeat(n)),
            fc.string({ unit: fc.constantFrom(...PATH_CHARS), maxLength: 20 }),
          ),
        ),
        { minLength: 1, maxLength: 5 },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "?",
      "??",
      "?&&&",
      "?=",
      "?limit",
      "?limit=1&limit=2",
      "?%",
      "#frag",
      "?a=%ZZ",
    ),
  },
);

/** Headers that try the auth layer: missing, malformed, unknown keys. */
function authHeadersArbitrary(token: string): fc.Arbitrary<Record<string, string>> {
  return fc.oneof(
    { weight: 30, arbitrary: fc.constant({ authorization: `Bearer ${token}` }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Record<string, string>>(
        {},
        { authorization: "" },
        { authorization: "Bearer" },
        { authorization: "Bearer " },
        { authorization: "Basic YTpi" },
        { authorization: `Bearer ${token}x` },
        { authorization: `Bearer ${token.slice(0, -1)}` },
        { authorization: "Bearer rb_" },
        { authorization: `Bearer rb_${"A".repeat(4_000)}` },
        { "x-api-key": "rb_nope" },
        { "x-api-key": token, authorization: "Bearer rb_other" },
        { authorization: "AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=00" },
        { authorization: "Bearer \u00ff\u00fe" },
      ),
    },
  );
}

/** Header values as they can travel: printable ASCII and Latin-1 bytes, trimmed. */
const headerValue: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.string({
      unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
      minLength: 1,
      maxLength: 40,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.string({
      unit: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
      minLength: 1,
      maxLength: 20,
    }),
  },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 12_000 }).map((n) => "h".repeat(n)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "%",
      "%zz",
      "%E2%82%AC",
      "%ff",
      "1.0",
      "0.3",
      "2.0",
      "",
      "null",
      "{}",
      "[]",
      "\u00ff",
    ),
  },
);

const validEvent = (i: number) => ({
  specversion: "1.0",
  id: `fz-${i}`,
  source: "fuzz.source",
  type: "fuzz.type",
  data: { i },
});

/** A CloudEvent attribute set with hostile names, types and values. */
function structuredEventArbitrary(context: FuzzContext): fc.Arbitrary<Json> {
  const attribute = fc.oneof(
    { weight: 8, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: wrongValue },
  );
  return fc
    .record({
      base: fc.nat().map(validEvent),
      specversion: fc.oneof(attribute, fc.constantFrom<Json>("0.3", "2.0", "1", "1.0 ", "")),
      id: attribute,
      source: attribute,
      type: attribute,
      time: fc.oneof(
        attribute,
        fc.constantFrom<Json>(
          "2026-01-02T03:04:05Z",
          "2026-02-30T00:00:00Z",
          "yesterday",
          "2026-01-02T03:04:05.123456789+14:00",
        ),
      ),
      subject: attribute,
      datacontenttype: fc.oneof(
        attribute,
        fc.constantFrom<Json>(
          "text/plain",
          "application/xml",
          "application/json; charset=utf-16",
          "",
        ),
      ),
      dataschema: fc.oneof(attribute, fc.constantFrom<Json>("not a uri", "http://[::1", "")),
      data_base64: fc.oneof(
        { weight: 6, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom<Json>("!!!", "aGVsbG8=", "====", "a", 42) },
      ),
      dropData: fc.boolean(),
      extensions: fc.array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom(
              "Upper",
              "under_score",
              "dash-ed",
              "x".repeat(21),
              "",
              "__proto__",
              "constructor",
              "ñ",
              "a.b",
              "resources",
              "traceparent",
            ),
            fc.stringMatching(/^[a-z0-9]{1,20}$/),
          ),
          wrongValue,
        ),
        { maxLength: 4 },
      ),
      fragment: fc.option(fragmentArbitrary(context), { freq: 8 }),
    })
    .map((r) => {
      const event: { [key: string]: Json } = { ...r.base };
      for (const key of [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
        "dataschema",
        "data_base64",
      ] as const) {
        const value = r[key];
        if (value !== undefined) event[key] = value;
      }
      if (r.dropData) delete event.data;
      for (const [name, value] of r.extensions) event[name] = value;
      if (r.fragment !== null) event.data = HOLE;
      return event;
    });
}

const spliceHoles = (text: string, fragment: string) =>
  text.replaceAll(JSON.stringify(HOLE), fragment);

/** PutEvents entries with hostile fields. */
function putEventsBodyArbitrary(context: FuzzContext): fc.Arbitrary<Buffer> {
  const detail = fc.oneof(
    { weight: 6, arbitrary: fc.nat().map((n) => JSON.stringify({ n, ok: true })) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        "",
        "{",
        "nope",
        "null",
        "[]",
        "1",
        '"s"',
        '{"a":\u0000}',
        '{"\\ud800":1}',
        '{"a":"\\udc00"}',
        "{}",
      ),
    },
    {
      weight: 1,
      arbitrary: fragmentArbitrary(context).map((fragment) => `{"payload":${fragment}}`),
    },
  );
  const entry = fc.record(
    {
      Source: fc.oneof(
        { weight: 12, arbitrary: fc.constant<Json>("fuzz.source") },
        { weight: 1, arbitrary: fc.constant<Json>("fuzz.deliver") },
        { weight: 2, arbitrary: wrongValue },
      ),
      DetailType: fc.oneof(
        { weight: 6, arbitrary: fc.constant<Json>("fuzz.type") },
        { weight: 1, arbitrary: wrongValue },
      ),
      Detail: fc.oneof(
        { weight: 6, arbitrary: detail as fc.Arbitrary<Json> },
        { weight: 1, arbitrary: wrongValue },
      ),
      EventBusName: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom<Json>(...context.buses) },
        { weight: 1, arbitrary: wrongValue },
        {
          weight: 1,
          arbitrary: fc.constantFrom<Json>(
            "arn:aws:events:eu-central-1:123456789012:event-bus/orders",
            "arn:aws:events:::event-bus/",
            "arn:",
            "nope",
          ),
        },
      ),
      Time: fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        {
          weight: 1,
          arbitrary: fc.constantFrom<Json>(
            1767323045,
            -1,
            1e20,
            "2026-01-02T03:04:05Z",
            "garbage",
            1.5,
          ),
        },
        { weight: 1, arbitrary: wrongValue },
      ),
      Resources: fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.array(wrongValue, { maxLength: 4 }) },
        { weight: 1, arbitrary: wrongValue },
      ),
      TraceHeader: fc.oneof(
        { weight: 6, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: wrongValue },
      ),
    },
    { requiredKeys: [] },
  );
  const { maxEntriesPerRequest } = context.limits;
  const entries = fc.oneof(
    { weight: 8, arbitrary: fc.array(entry, { minLength: 1, maxLength: 4 }) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(maxEntriesPerRequest, maxEntriesPerRequest + 1, 150)
        .map((n) =>
          Array.from({ length: n }, () => ({
            Source: "fuzz.source",
            DetailType: "fuzz.type",
            Detail: "{}",
          })),
        ),
    },
    { weight: 1, arbitrary: fc.constant([]) },
  );
  const wellFormed = fc
    .tuple(entries, fc.option(wrongValue, { freq: 10 }))
    .map(([list, entriesOverride]) =>
      json(entriesOverride === null ? { Entries: list } : { Entries: entriesOverride }),
    );
  return fc.oneof(
    { weight: 8, arbitrary: wellFormed },
    {
      weight: 2,
      arbitrary: bodyArbitrary(
        [{ Entries: [{ Source: "fuzz.source", DetailType: "fuzz.type", Detail: "{}" }] }],
        context,
      ).map((b) => b ?? Buffer.alloc(0)),
    },
  );
}

/** Patterns meant to hurt: deep, wide `$or`, wildcard storms, regexes, bad operators. */
export function patternArbitrary(context: FuzzContext): fc.Arbitrary<string> {
  const operator = fc.oneof(
    fc.constantFrom<Json>(
      { prefix: "a" },
      { prefix: { "equals-ignore-case": "A" } },
      { suffix: "" },
      { "equals-ignore-case": 5 },
      { wildcard: "*a*a*a*a*a*b" },
      { wildcard: "**" },
      { wildcard: "\\*\\\\*" },
      { wildcard: 1 },
      { numeric: [">", 0, "<", 10] },
      { numeric: [">", "x"] },
      { numeric: [">"] },
      { numeric: ["=", 1e10] },
      { numeric: ["<", 1.1234567] },
      { numeric: [">", 1, ">", 2, ">", 3] },
      { exists: true },
      { exists: "yes" },
      { cidr: "10.0.0.0/8" },
      { cidr: "999.1.1.1/99" },
      { cidr: "::1/200" },
      { "anything-but": ["a", 1, null] },
      { "anything-but": { prefix: "a" } },
      { "anything-but": { wildcard: ["*a*", "b*"] } },
      { "anything-but": { "anything-but": "x" } },
      { contains: "" },
      { regex: "(a+)+$" },
      { regex: "(a|aa)*b" },
      { regex: "[" },
      { regex: "\\p{L}{1,1000}" },
      { regex: "a{0,99999}" },
      { regex: "(?=x)" },
      { $and: [{ prefix: "a" }, { suffix: "b" }] },
      { nope: 1 },
      {},
    ),
    wrongValue,
  );
  const values = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.array(fc.oneof(wrongValue, operator), { minLength: 0, maxLength: 5 }),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(1_000, 1_025)
        .map((n) => Array.from({ length: n }, (_, i) => `v${i}`)),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 2, max: 40 }).map((n) => [{ wildcard: `${"*x".repeat(n)}*` }]),
    },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 2, max: 60 })
        .map((n) => Array.from({ length: n }, (_, i) => ({ regex: `(a|b)*c${i}` }))),
    },
  );
  const field = fc.oneof(
    fc.constantFrom(
      "source",
      "type",
      "detail-type",
      "data",
      "detail",
      "id",
      "a.b",
      "",
      "__proto__",
      "$or",
      "$and",
    ),
    fc.stringMatching(/^[a-z]{1,8}$/),
  );
  const { pattern } = fc.letrec<{ pattern: Json }>((tie) => ({
    pattern: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.dictionary(field, values as fc.Arbitrary<Json>, { maxKeys: 4 }),
      fc.dictionary(field, tie("pattern"), { maxKeys: 3 }),
      fc.array(tie("pattern"), { maxLength: 4 }).map((alternatives) => ({ $or: alternatives })),
    ),
  }));
  const { maxJsonDepth, maxPatternBytes } = context.limits;
  return fc.oneof(
    { weight: 6, arbitrary: pattern.map((p) => JSON.stringify(p)) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 2, max: 1_500 })
        .map((n) =>
          JSON.stringify({
            $or: Array.from({ length: n }, (_, i) => ({ [`f${i % 300}`]: [`v${i}`] })),
          }),
        ),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(20, maxJsonDepth - 1, maxJsonDepth + 1, 1_000)
        .map((d) => `${'{"a":'.repeat(d)}["x"]${"}".repeat(d)}`),
    },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 2, max: 12 }).map((d) => JSON.stringify(nestedOr(d))),
    },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 250, max: 300 })
        .map((n) =>
          JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, ["x"]]))),
        ),
    },
    {
      weight: 1,
      arbitrary: fc.constant(JSON.stringify({ source: ["x".repeat(maxPatternBytes)] })),
    },
    { weight: 1, arbitrary: fc.constantFrom("not json", "[]", "null", '"source"', "{", "1") },
  );
}

/** `$or` inside `$or`: 2^depth alternatives if expanded naively. */
function nestedOr(depth: number): Json {
  if (depth === 0) return { a: ["x"] };
  return { $or: [nestedOr(depth - 1), nestedOr(depth - 1)] };
}

/** An event for the pattern test route: plain, deep, or with wide arrays (array consistency). */
const patternEventArbitrary: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .jsonValue({ maxDepth: 4 })
      .map((data) =>
        JSON.stringify({ source: "x", "detail-type": "t", detail: data, a: { b: "ab" } }),
      ),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 100, max: 1_000 })
      .map((n) =>
        JSON.stringify({
          a: Array.from({ length: n }, (_, i) => ({ b: `v${i}`, c: [i, "x", null] })),
        }),
      ),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 2, max: 30 })
      .map((n) => JSON.stringify({ source: `${"x".repeat(n)}y`, a: "a".repeat(n * 100) })),
  },
  { weight: 1, arbitrary: fc.constantFrom("null", "[]", '"x"', "1", "{", '{"\\ud800":"\\udc00"}') },
);

/** JSONata that loops, recurses, allocates, backtracks, or does not compile. */
export const HOSTILE_TRANSFORMS: readonly string[] = [
  "$",
  "data",
  '{"id": id, "n": data.i}',
  "($f := function($x) { $f($x) }; $f(1))",
  "($f := function($x) { $x > 0 ? $f($x - 1) + 1 : 0 }; $f(100000))",
  "($f := function($x) { [$f($x), $f($x)] }; $f(1))",
  "[1..10000000]",
  "[1..999999]",
  "$count([1..1000000])",
  '$pad("", 100000000)',
  '$join([1..200000].$string(), ",")',
  '$reduce([1..900000], function($a, $b) { $a & "x" }, "")',
  "$sort([1..200000], function($a, $b) { $a < $b })",
  '$match("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", /(a+)+$/)',
  '$replace("aaaaaaaaaaaaaaaaaaaaaaaaaaaa!", /(a|aa)+$/, "b")',
  '$split("x", "")',
  "$eval('$eval(\"1\")')",
  '$eval("[1..100000000]")',
  "$each($, function($v, $k) { $k })",
  "$sift($, function($v) { true })",
  "$string($)",
  "**",
  "**.**.**.**",
  "$$.$$.$$",
  "$keys($) ~> $map(function($k) { $lookup($$, $k) })",
  "$spread($)",
  '$merge([1..100000].{ "k" & $string($): $ })',
  "$power(10, 400)",
  "1/0",
  '"a" & $',
  '$number("1e400")',
  "$formatNumber(1e300, '#,##0.00')",
  "$toMillis('garbage')",
  '$now("[Y9999999]")',
  "$fromMillis(1e30)",
  "$base64decode('!!!')",
  "$decodeUrl('%E0%A4%A')",
  "$shuffle([1..100000])",
  "$zip([1..300000], [1..300000])",
  "(",
  ")",
  "{",
  "[1..",
  "function",
  "$undefinedFunction()",
  "$ ~> |$|{}|",
  "$ ~> |**|{'x': 1}|",
  "data.(**)[0]",
  "λ($x){$x}(1)",
  "\u0000",
  "$string(1e21)",
];

/** A JSONata transform: one of the hostile ones, one too large, or random token soup. */
function transformArbitrary(context: FuzzContext): fc.Arbitrary<Json> {
  const tokens = [
    "$",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ".",
    "..",
    "*",
    "**",
    ":=",
    "function",
    "$f",
    "$x",
    ";",
    ",",
    "&",
    "~>",
    "?",
    ":",
    "1",
    '"s"',
    "data",
    "$map",
    "$reduce",
    "$string",
    "|",
    "%",
    "#",
    "@",
    "^",
    "<",
    ">",
  ];
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom<Json>(...HOSTILE_TRANSFORMS) },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.constantFrom(...tokens), { maxLength: 20 })
        .map((parts) => parts.join(" ")),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(context.limits.maxTransformBytes, context.limits.maxTransformBytes + 1)
        .map((n) => `"${"z".repeat(Math.max(0, n - 2))}"`),
    },
    { weight: 1, arbitrary: wrongValue },
  );
}

/** A rule body: a pattern and targets, any part of which may be hostile. */
function ruleBodyArbitrary(
  context: FuzzContext,
  receiverUrl: string,
  withName: boolean,
): fc.Arbitrary<Buffer> {
  const target = fc.record({
    id: fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom<Json>("t1", "t2") },
      { weight: 1, arbitrary: wrongValue },
    ),
    webhook: fc.oneof(
      { weight: 6, arbitrary: fc.constant<Json>({ url: `${receiverUrl}/fuzz-rule` }) },
      {
        weight: 1,
        arbitrary: fc.constantFrom<Json>(
          { url: "ftp://x" },
          { url: "http://" },
          { url: "http://169.254.169.254/latest" },
          { url: "not a url" },
          { url: 5 },
          {},
          null,
        ),
      },
    ),
    format: fc.oneof(
      { weight: 4, arbitrary: fc.constant<Json>("transform") },
      {
        weight: 1,
        arbitrary: fc.constantFrom<Json>("aws", "data", "cloudevents-binary", "nope", 1),
      },
    ),
    transform: transformArbitrary(context),
  });
  const targets = fc.oneof(
    { weight: 8, arbitrary: fc.array(target, { minLength: 1, maxLength: 2 }) },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 6, max: 50 })
        .map((n) =>
          Array.from({ length: n }, (_, i) => ({
            id: `t${i}`,
            webhook: { url: `${receiverUrl}/fuzz-rule` },
          })),
        ),
    },
    { weight: 1, arbitrary: wrongValue },
  );
  return fc
    .record({
      name: fc.oneof(
        { weight: 5, arbitrary: fc.constantFrom<Json>("fuzz-a", "fuzz-b", "fuzz-c") },
        { weight: 1, arbitrary: wrongValue },
      ),
      pattern: fc.oneof(
        { weight: 1, arbitrary: fc.constant('{"source":["fuzz.never"]}') },
        { weight: 3, arbitrary: patternArbitrary(context) },
      ),
      targets,
      description: fc.option(wrongValue, { freq: 4 }),
    })
    .map((r) => {
      const body: { [key: string]: Json } = { pattern: HOLE, targets: r.targets };
      if (withName) body.name = r.name;
      if (r.description !== null) body.description = r.description;
      return Buffer.from(spliceHoles(JSON.stringify(body), r.pattern));
    });
}

/** Fills a path template's `{parameters}` with the given segments, in order. */
function fillTemplate(template: string, segments: readonly string[]): string {
  let i = 0;
  return template.replace(/\{[^}]+\}/g, () => segments[i++] ?? "x");
}

/** Everything the service knows by name, and hostile values, for one parameter. */
function knownFor(parameter: string, context: FuzzContext): readonly string[] {
  switch (parameter) {
    case "bus":
      return context.buses;
    case "name":
    case "rule":
      return [...context.rules, ...context.ids];
    case "target":
      return context.targets;
    case "period":
      return ["2026-01", "2025-12", "1999-01", "2999-12"];
    default:
      return context.ids;
  }
}

/**
 * Every request family, weighted so that the cheap ones dominate and the costly ones
 * (pathological patterns and transforms) still come by the thousand.
 */
export function fuzzRequestArbitrary(
  context: FuzzContext,
  options: { token: string; receiverUrl: string },
): fc.Arbitrary<FuzzRequest> {
  const auth = authHeadersArbitrary(options.token);
  const examples = new Map<string, Json[]>();
  for (const { route, mediaType, examples: list } of requestBodies()) {
    if (mediaType !== "application/json") continue;
    const key = `${route.method} ${route.path}`;
    examples.set(key, [...(examples.get(key) ?? []), ...(list as Json[])]);
  }
  const bus = pathSegmentArbitrary(context.buses);

  const putEvents = fc
    .tuple(putEventsBodyArbitrary(context), auth, jsonContentType)
    .map(([body, headers, type]): FuzzRequest => ({
      family: "put-events",
      method: "POST",
      template: "/v1/events",
      path: "/v1/events",
      headers: { ...headers, "content-type": type },
      body,
    }));

  const awsPutEvents = fc
    .tuple(
      putEventsBodyArbitrary(context),
      fc.oneof(
        { weight: 8, arbitrary: fc.constant("AWSEvents.PutEvents") },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            "AWSEvents.ListRules",
            "",
            "AWSEvents.PutEvents ",
            "x".repeat(3_000),
          ),
        },
      ),
      fc.oneof(
        { weight: 6, arbitrary: fc.constant(true) },
        { weight: 1, arbitrary: fc.constant(false) },
      ),
      fc.constantFrom("application/x-amz-json-1.1", "application/json", "text/plain"),
    )
    .map(([body, target, sign, type]): FuzzRequest => ({
      family: "aws-put-events",
      method: "POST",
      template: "/",
      path: "/",
      headers: { "content-type": type, "x-amz-target": target },
      body,
      sign,
    }));

  const ceHeaders = fc
    .record({
      specversion: fc.oneof(
        { weight: 5, arbitrary: fc.constant("1.0") },
        { weight: 1, arbitrary: headerValue },
        { weight: 1, arbitrary: fc.constant(undefined) },
      ),
      id: fc.oneof(
        { weight: 5, arbitrary: fc.nat().map((n) => `bin-${n}`) },
        { weight: 1, arbitrary: headerValue },
        { weight: 1, arbitrary: fc.constant(undefined) },
      ),
      source: fc.oneof(
        { weight: 5, arbitrary: fc.constant("fuzz.source") },
        { weight: 1, arbitrary: headerValue },
        { weight: 1, arbitrary: fc.constant(undefined) },
      ),
      type: fc.oneof(
        { weight: 5, arbitrary: fc.constant("fuzz.type") },
        { weight: 1, arbitrary: headerValue },
        { weight: 1, arbitrary: fc.constant(undefined) },
      ),
      time: fc.oneof(
        { weight: 5, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: headerValue },
      ),
      dataschema: fc.oneof(
        { weight: 5, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: headerValue },
      ),
      subject: fc.oneof(
        { weight: 5, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: headerValue },
      ),
      extensions: fc.array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom(
              "Upper",
              "under_score",
              "dash-ed",
              "x".repeat(30),
              "",
              "a.b",
              "__proto__",
              "data",
              "data_base64",
              "specversion",
            ),
            fc.stringMatching(/^[a-z0-9]{1,12}$/),
          ),
          headerValue,
        ),
        { maxLength: 4 },
      ),
    })
    .map((r) => {
      const headers: Record<string, string> = {};
      for (const key of [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "dataschema",
        "subject",
      ] as const) {
        const value = r[key];
        if (value !== undefined) headers[`ce-${key}`] = value;
      }
      for (const [name, value] of r.extensions) headers[`ce-${name}`] = value;
      return headers;
    });

  const binaryContentType = fc.oneof(
    { weight: 4, arbitrary: fc.constant("application/json") },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        "text/plain",
        "application/octet-stream",
        "application/xml",
        "application/json; charset=utf-16",
        "",
        "application/cloudevents+jsonx",
        "image/png",
      ),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
  const cloudEventsBinary = fc
    .tuple(
      bus,
      ceHeaders,
      binaryContentType,
      bodyArbitrary([{ order: 1, total: 250 }], context),
      auth,
    )
    .map(([b, ce, type, body, headers]): FuzzRequest => ({
      family: "cloudevents-binary",
      method: "POST",
      template: "/v1/buses/{bus}/cloudevents",
      path: `/v1/buses/${b}/cloudevents`,
      headers: { ...headers, ...ce, ...(type === undefined ? {} : { "content-type": type }) },
      body,
    }));

  const structuredType = fc.oneof(
    { weight: 5, arbitrary: fc.constant("application/cloudevents+json") },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "application/cloudevents+json; charset=utf-8",
        "application/cloudevents+json; charset=utf-16",
        "APPLICATION/CLOUDEVENTS+JSON",
        "application/cloudevents+xml",
        "application/cloudevents",
      ),
    },
  );
  const cloudEventsStructured = fc
    .tuple(
      bus,
      structuredEventArbitrary(context),
      fc.option(fragmentArbitrary(context), { freq: 1 }),
      structuredType,
      auth,
      fc.option(fc.integer({ min: 0, max: 2 }), { freq: 6 }),
    )
    .map(([b, event, fragment, type, headers, encoding]): FuzzRequest => {
      let body = Buffer.from(spliceHoles(JSON.stringify(event), fragment ?? "{}"));
      if (encoding === 0) body = Buffer.from(body.toString("utf8"), "utf16le");
      if (encoding === 1) body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
      if (encoding === 2) body = body.subarray(0, Math.floor(body.length / 2));
      return {
        family: "cloudevents-structured",
        method: "POST",
        template: "/v1/buses/{bus}/cloudevents",
        path: `/v1/buses/${b}/cloudevents`,
        headers: { ...headers, "content-type": type },
        body,
      };
    });

  const { maxEntriesPerRequest } = context.limits;
  const cloudEventsBatch = fc
    .tuple(
      bus,
      fc.oneof(
        {
          weight: 6,
          arbitrary: fc.array(structuredEventArbitrary(context), { minLength: 0, maxLength: 5 }),
        },
        {
          weight: 1,
          arbitrary: fc
            .constantFrom(maxEntriesPerRequest, maxEntriesPerRequest + 1, 150)
            .map((n) => Array.from({ length: n }, (_, i) => validEvent(i))),
        },
        { weight: 1, arbitrary: fc.array(wrongValue, { maxLength: 4 }) },
        { weight: 1, arbitrary: wrongValue },
      ),
      fc.option(fragmentArbitrary(context), { freq: 4 }),
      auth,
      fc.constantFrom(
        "application/cloudevents-batch+json",
        "application/cloudevents-batch+json; charset=utf-8",
        "application/cloudevents-batch+jsonx",
      ),
    )
    .map(([b, events, fragment, headers, type]): FuzzRequest => ({
      family: "cloudevents-batch",
      method: "POST",
      template: "/v1/buses/{bus}/cloudevents",
      path: `/v1/buses/${b}/cloudevents`,
      headers: { ...headers, "content-type": type },
      body: Buffer.from(spliceHoles(JSON.stringify(events), fragment ?? "{}")),
    }));

  const testPattern = fc
    .tuple(
      patternArbitrary(context),
      patternEventArbitrary,
      auth,
      fc.constantFrom("pattern", "pattern", "pattern", "Pattern", "patterns"),
    )
    .map(([pattern, event, headers, key]): FuzzRequest => ({
      family: "test-event-pattern",
      method: "POST",
      template: "/v1/test-event-pattern",
      path: "/v1/test-event-pattern",
      headers: { ...headers, "content-type": "application/json" },
      body: Buffer.from(`{"${key}":${pattern},"event":${event}}`),
    }));

  const createRule = fc
    .tuple(bus, ruleBodyArbitrary(context, options.receiverUrl, true), auth)
    .map(([b, body, headers]): FuzzRequest => ({
      family: "rule-create",
      method: "POST",
      template: "/v1/buses/{bus}/rules",
      path: `/v1/buses/${b}/rules`,
      headers: { ...headers, "content-type": "application/json" },
      body,
    }));
  const putRule = fc
    .tuple(
      bus,
      fc.constantFrom("fuzz-a", "fuzz-b", "fuzz-c", "%zz", ".."),
      ruleBodyArbitrary(context, options.receiverUrl, false),
      auth,
    )
    .map(([b, name, body, headers]): FuzzRequest => ({
      family: "rule-put",
      method: "PUT",
      template: "/v1/buses/{bus}/rules/{name}",
      path: `/v1/buses/${b}/rules/${name}`,
      headers: { ...headers, "content-type": "application/json" },
      body,
    }));
  const dryRun = fc
    .tuple(
      bus,
      fc.constantFrom(...context.rules, "fuzz-a", "nope"),
      ruleBodyArbitrary(context, options.receiverUrl, false),
      fc.oneof(fc.constant(5), wrongValue),
      auth,
    )
    .map(([b, name, ruleBody, limit, headers]): FuzzRequest => ({
      family: "rule-dry-run",
      method: "POST",
      template: "/v1/buses/{bus}/rules/{name}:dry-run",
      path: `/v1/buses/${b}/rules/${encodeURIComponent(name)}:dry-run`,
      headers: { ...headers, "content-type": "application/json" },
      body: Buffer.from(`{"limit":${JSON.stringify(limit)},"rule":${ruleBody.toString("utf8")}}`),
    }));

  // Every route of the contract, with hostile parameters, queries and bodies.
  const routes = contractRoutes();
  const perRoute = routes.map((route: ContractRoute) => {
    const parameters = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] ?? "");
    const segments = fc.tuple(...parameters.map((p) => pathSegmentArbitrary(knownFor(p, context))));
    const takesBody = route.method !== "GET" && route.method !== "DELETE";
    const body = takesBody
      ? bodyArbitrary(examples.get(`${route.method} ${route.path}`) ?? [], context)
      : fc.option(bodyArbitrary([], context), { freq: 10 }).map((b) => b ?? undefined);
    return fc
      .tuple(segments, queryArbitrary, body, auth, jsonContentType)
      .map(([values, query, b, headers, type]): FuzzRequest => ({
        family: `route ${route.method} ${route.path}`,
        method: route.method,
        template: route.path,
        path: `${fillTemplate(route.path, values)}${query}`,
        headers: { ...headers, ...(b === undefined ? {} : { "content-type": type }) },
        body: b ?? undefined,
        sign: route.path === "/",
      }));
  });
  const anyRoute = fc.oneof(...perRoute);

  // Paths and methods no route has.
  const strayRoute = fc
    .tuple(
      fc.constantFrom(
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "HEAD",
        "PROPFIND",
        "M-SEARCH",
      ),
      fc.oneof(
        fc.constantFrom(
          "/",
          "//",
          "/v1",
          "/v1/",
          "/v2/buses",
          "/v1/buses/",
          "/v1/buses//rules",
          "/v1/buses/default/rules/",
          "/v1/keys/",
          "/v1/./buses",
          "/v1/../v1/buses",
          "/%2e%2e/",
          "/*",
          "/v1/buses/default/cloudevents/extra",
          "/v1/buses/default:enable",
        ),
        pathSegmentArbitrary(context.buses).map((s) => `/v1/${s}`),
        pathSegmentArbitrary(context.buses).map((s) => `/v1/buses/${s}/${s}/${s}`),
      ),
      auth,
    )
    .map(([method, path, headers]): FuzzRequest => ({
      family: "stray",
      method,
      template: undefined,
      path,
      headers,
      body: undefined,
    }));

  return fc.oneof(
    { weight: 16, arbitrary: putEvents },
    { weight: 5, arbitrary: awsPutEvents },
    { weight: 10, arbitrary: cloudEventsBinary },
    { weight: 8, arbitrary: cloudEventsStructured },
    { weight: 5, arbitrary: cloudEventsBatch },
    { weight: 10, arbitrary: testPattern },
    { weight: 3, arbitrary: createRule },
    { weight: 2, arbitrary: putRule },
    { weight: 1, arbitrary: dryRun },
    { weight: 36, arbitrary: anyRoute },
    { weight: 4, arbitrary: strayRoute },
  );
}
