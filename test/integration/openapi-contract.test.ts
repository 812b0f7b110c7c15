/**
 * Holds a real Relaybus to `openapi.yaml`: every route of the document is called, for its
 * success and its main errors, and every answer is validated against the declared status,
 * content type and schema. The last test compares the routes exercised here with the
 * routes the document declares, so neither can grow without the other.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  assertMatchesContract,
  assertResponseMatchesContract,
  compileAllResponseSchemas,
  contractRoutes,
  loadContract,
  requestBodies,
  routeKey,
  schemaErrors,
} from "../helpers/openapi.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

/** Small limits, so that the size errors are cheap to provoke. */
const MAX_REQUEST_BYTES = 16_384;
const MAX_EVENT_BYTES = 4_096;
const MAX_ENTRIES = 10;

const REQUEST_ID = "0b7e4a52-3f7c-4f6b-8d1e-2a9c5e6f7a80";
/** A literal signing secret in the rule file (32 bytes of 7s): GET shows it as `whsec_***`. */
const FILE_SIGNING_SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;

type Obj = Record<string, unknown>;

/** The stream of the rule file: the API shows it, pauses it, cannot change or delete it. */
const FILE_STREAM = "file-stream";

/** A rule file of connections only (no bus): the API shows it but cannot change it. */
const FILE_CONNECTIONS = `connections:
  - name: from-file
    authorization:
      basic: {username: relay, password: file-password}
`;

interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON body (undefined when empty). */
  body: Obj;
}

interface Call {
  /** Values of the path template's `{parameters}`. */
  params?: Record<string, string>;
  /** Query parameters; pairs when one is repeated. */
  query?: Record<string, string> | [string, string][];
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
  /** Sent as is; give the content-type in `headers`. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

function fileRules(receiverUrl: string): string {
  return `bus: orders
description: Orders from the shop
rules:
  - name: file-rule
    description: Every order, to the receiver
    pattern:
      source: [shop.orders]
    targets:
      - id: ok
        webhook: {url: "${receiverUrl}/ok"}
        signing: {secrets: ["${FILE_SIGNING_SECRET}"]}
  - name: to-dead-letters
    pattern:
      source: [dlq.test]
    targets:
      - id: rejecting
        webhook: {url: "${receiverUrl}/reject"}
        format: data
        retry: {maxAttempts: 1}
schedules:
  - name: ct-schedule
    expression: at(2099-01-01T00:00:00)
    bus: orders
    event: {source: contract.scheduler, type: Later}
streams:
  - name: ${FILE_STREAM}
    description: Orders to the receiver; paused, so it only shows
    source: {bus: {bus: orders}}
    sink: {webhook: {url: "${receiverUrl}/file-stream"}}
    state: paused
`;
}

function apiRule(name: string, receiverUrl: string): Obj {
  return {
    name,
    description: "Big orders",
    pattern: {
      source: ["shop.orders"],
      "detail-type": ["order.created"],
      detail: { total: [{ numeric: [">", 100] }] },
    },
    targets: [
      {
        id: "fulfil",
        webhook: { url: `${receiverUrl}/fulfil` },
        format: "transform",
        transform: '{"orderId": data.id}',
        retry: { maxAttempts: 3, maxAgeSeconds: 600 },
      },
    ],
  };
}

function deep(levels: number): string {
  return `${"[".repeat(levels)}${"]".repeat(levels)}`;
}

/**
 * `value` with every `$ref` into the contract inlined (a `$ref` with siblings becomes
 * `allOf`), for checking an answer against a component no operation declares.
 */
function inlineRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(inlineRefs);
  if (typeof value !== "object" || value === null) return value;
  const { $ref, ...rest } = value as Obj;
  const inlined = Object.fromEntries(Object.entries(rest).map(([key, inner]) => [key, inlineRefs(inner)]));
  if (typeof $ref !== "string") return inlined;
  const target = $ref
    .slice(2)
    .split("/")
    .reduce<unknown>((at, key) => (at as Obj)[key], loadContract());
  return Object.keys(inlined).length === 0 ? inlineRefs(target) : { allOf: [inlineRefs(target), inlined] };
}

describe("openapi contract", () => {
  let receiver: Receiver;
  let service: TestService;
  /** Every route called through {@link call}, as `METHOD path`. */
  const exercised = new Set<string>();

  /** Calls `method pathTemplate` and checks the answer against the contract. */
  async function call(method: string, pathTemplate: string, options: Call = {}): Promise<Answer> {
    let path = pathTemplate;
    for (const [name, value] of Object.entries(options.params ?? {})) {
      path = path.replace(`{${name}}`, encodeURIComponent(value));
    }
    assert.ok(!/\{\w+\}/.test(path), `${pathTemplate}: a path parameter has no value`);
    const query = new URLSearchParams(options.query ?? []).toString();
    const headers: Record<string, string> = { ...options.headers };
    let body: string | Buffer | undefined = options.raw;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["content-type"] ??= "application/json";
    }
    const response = await fetch(`${service.url}${path}${query === "" ? "" : `?${query}`}`, {
      method,
      headers,
      body,
    });
    exercised.add(routeKey(method, pathTemplate));
    const parsed = await assertResponseMatchesContract(method, pathTemplate, response);
    return { status: response.status, headers: response.headers, body: (parsed ?? {}) as Obj };
  }

  function assertError(answer: Answer, status: number, code: string): Obj {
    const error = answer.body.error as Obj | undefined;
    assert.equal(
      answer.status,
      status,
      `expected ${status} ${code}, got ${answer.status} ${JSON.stringify(answer.body)}`,
    );
    assert.equal(error?.code, code, JSON.stringify(answer.body));
    return error!;
  }

  before(async () => {
    receiver = await createReceiver();
    receiver.always("/reject", { status: 400, body: "no thanks" });
    service = await startTestService({
      rules: { "orders.yaml": fileRules(receiver.url), "connections.yaml": FILE_CONNECTIONS },
      config: {
        limits: {
          maxRequestBytes: MAX_REQUEST_BYTES,
          maxEventBytes: MAX_EVENT_BYTES,
          maxEntriesPerRequest: MAX_ENTRIES,
        },
      },
    });
  });
  after(async () => {
    await service.close();
    await receiver.close();
  });

  describe("the document", () => {
    test("openapi - every response schema compiles, with every $ref resolved", () => {
      assert.ok(compileAllResponseSchemas() >= contractRoutes().length * 2);
    });

    test("openapi - every request example matches its schema", () => {
      const bodies = requestBodies();
      assert.ok(bodies.length >= 6, "request bodies are declared");
      let examples = 0;
      for (const { route, mediaType, schema, examples: list } of bodies) {
        for (const example of list) {
          examples++;
          assert.deepEqual(
            schemaErrors(schema, example),
            [],
            `${routeKey(route.method, route.path)} ${mediaType} example`,
          );
        }
      }
      assert.ok(examples >= 8, `request examples a newcomer can paste (found ${examples})`);
    });

    test("openapi - the Error schema lists exactly the codes of src/errors.ts", async () => {
      const { ERROR_STATUS } = await import("../../src/errors.js");
      const schemas = (loadContract().components as Obj).schemas as Obj;
      const listed = (schemas.ErrorCode as { enum: string[] }).enum;
      assert.deepEqual([...listed].sort(), Object.keys(ERROR_STATUS).sort());
    });

    test("openapi - each error response admits only the codes whose status it is", async () => {
      const { ERROR_STATUS } = await import("../../src/errors.js");
      // Every code must pass the error response of its own status and fail the others'.
      const samples: [string, string, string][] = [
        ["POST", "/v1/buses/{bus}/rules", "400"],
        ["POST", "/v1/buses/{bus}/rules", "404"],
        ["POST", "/v1/buses/{bus}/rules", "409"],
        ["POST", "/v1/buses/{bus}/cloudevents", "413"],
        ["POST", "/v1/buses/{bus}/rules", "415"],
        ["POST", "/v1/buses/{bus}/rules", "500"],
        ["POST", "/v1/buses/{bus}/rules", "503"],
      ];
      const notServed = new Set(["MethodNotAllowed", "InvalidConfig"]);
      for (const [code, status] of Object.entries(ERROR_STATUS)) {
        if (notServed.has(code)) continue;
        for (const [method, path, declared] of samples) {
          const body = { error: { code, message: "m", requestId: REQUEST_ID } };
          const run = () =>
            assertMatchesContract(method, path, Number(declared), "application/json", body);
          if (String(status) === declared) run();
          else assert.throws(run, /does not match/, `${code} must not pass as a ${declared}`);
        }
      }
    });

    test("openapi - the helper refuses undeclared statuses, content types, bodies and missing fields", () => {
      assertMatchesContract("GET", "/healthz", 200, "application/json; charset=utf-8", {
        status: "ok",
        version: "1.0.0",
      });
      assert.throws(
        () => assertMatchesContract("GET", "/healthz", 200, "application/json", { status: "ok" }),
        /version/,
      );
      assert.throws(
        () =>
          assertMatchesContract("GET", "/healthz", 200, "application/json", {
            status: "ok",
            version: "1",
            extra: 1,
          }),
        /does not match/,
      );
      assert.throws(
        () => assertMatchesContract("GET", "/healthz", 404, "application/json", {}),
        /status 404 is not declared/,
      );
      assert.throws(
        () => assertMatchesContract("GET", "/healthz", 200, "text/html", "<p>"),
        /text\/html is not declared/,
      );
      assert.throws(
        () => assertMatchesContract("GET", "/nowhere", 200, "application/json", {}),
        /no such path/,
      );
      assert.throws(
        () => assertMatchesContract("PATCH", "/healthz", 200, "application/json", {}),
        /no such operation/,
      );
      assert.throws(
        () => assertMatchesContract("DELETE", "/v1/buses/{bus}", 204, null, { a: 1 }),
        /declares no body/,
      );
      assert.throws(
        () =>
          assertMatchesContract("GET", "/v1/buses/{bus}", 404, "application/json", {
            error: { code: "BusNotFound", message: "m", requestId: "not-a-uuid" },
          }),
        /requestId/,
      );
    });
  });

  describe("ingest", () => {
    test("contract - POST /v1/events stores entries for several buses", async () => {
      const answer = await call("POST", "/v1/events", {
        json: {
          Entries: [
            {
              Source: "shop.orders",
              DetailType: "order.created",
              Detail: '{"id":"o-1","total":250}',
              EventBusName: "orders",
            },
            {
              Source: "shop.billing",
              DetailType: "invoice.sent",
              Detail: "{}",
              Time: "2026-01-02T03:04:05Z",
              Resources: ["r-1"],
            },
          ],
        },
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.FailedEntryCount, 0);
      assert.equal((answer.body.Entries as Obj[]).length, 2);
    });

    test("contract - POST /v1/events reports bad entries in place and stores the rest", async () => {
      const answer = await call("POST", "/v1/events", {
        json: {
          Entries: [
            {
              Source: "shop.orders",
              DetailType: "order.created",
              Detail: "{}",
              EventBusName: "nope",
            },
            { Source: "shop.orders", DetailType: "order.created", Detail: "not json" },
            { DetailType: "order.created", Detail: "{}" },
            {
              Source: "shop.orders",
              DetailType: "order.created",
              Detail: JSON.stringify({ pad: "x".repeat(MAX_EVENT_BYTES) }),
            },
            { Source: "shop.orders", DetailType: "order.created", Detail: "{}" },
          ],
        },
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.FailedEntryCount, 4);
      const codes = (answer.body.Entries as Obj[]).map((e) => e.ErrorCode ?? "stored");
      assert.deepEqual(codes, [
        "BusNotFound",
        "MalformedDetail",
        "ValidationError",
        "EventTooLarge",
        "stored",
      ]);
    });

    test("contract - POST /v1/events refuses invalid JSON, no Entries, too many, too deep, too large, wrong type", async () => {
      assertError(
        await call("POST", "/v1/events", {
          raw: '{"Entries": [',
          headers: { "content-type": "application/json" },
        }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", "/v1/events", { json: { entries: [] } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", "/v1/events", { json: { Entries: [] } }),
        400,
        "ValidationError",
      );
      const many = Array.from({ length: MAX_ENTRIES + 1 }, () => ({
        Source: "a",
        DetailType: "b",
        Detail: "{}",
      }));
      assertError(
        await call("POST", "/v1/events", { json: { Entries: many } }),
        400,
        "TooManyEntries",
      );
      assertError(
        await call("POST", "/v1/events", {
          raw: `{"Entries": ${deep(100)}}`,
          headers: { "content-type": "application/json" },
        }),
        400,
        "JsonTooDeep",
      );
      const big = {
        Entries: [
          {
            Source: "a",
            DetailType: "b",
            Detail: JSON.stringify({ pad: "x".repeat(MAX_REQUEST_BYTES) }),
          },
        ],
      };
      assertError(await call("POST", "/v1/events", { json: big }), 413, "PayloadTooLarge");
      assertError(
        await call("POST", "/v1/events", {
          raw: "Entries=1",
          headers: { "content-type": "text/plain" },
        }),
        415,
        "UnsupportedMediaType",
      );
    });

    test("contract - POST / (AWS JSON protocol) answers PutEvents and AWS-shaped errors", async () => {
      const aws = {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AWSEvents.PutEvents",
      };
      const ok = await call("POST", "/", {
        raw: JSON.stringify({
          Entries: [{ Source: "sdk.aws", DetailType: "t", Detail: "{}", Time: 1767323045 }],
        }),
        headers: aws,
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.FailedEntryCount, 0);
      assert.ok(ok.headers.get("x-amzn-requestid"));

      const wrongTarget = await call("POST", "/", {
        raw: '{"Entries":[]}',
        headers: { ...aws, "x-amz-target": "AWSEvents.PutRule" },
      });
      assert.equal(wrongTarget.status, 400);
      assert.equal(wrongTarget.body.__type, "ValidationError");
      assert.equal(wrongTarget.headers.get("x-amzn-errortype"), "ValidationError");

      const invalid = await call("POST", "/", { raw: "{", headers: aws });
      assert.equal(invalid.status, 400);
      assert.equal(invalid.body.__type, "InvalidJson");

      const tooMany = await call("POST", "/", {
        raw: JSON.stringify({
          Entries: Array.from({ length: MAX_ENTRIES + 1 }, () => ({
            Source: "a",
            DetailType: "b",
            Detail: "{}",
          })),
        }),
        headers: aws,
      });
      assert.equal(tooMany.status, 400);
      assert.equal(tooMany.body.__type, "TooManyEntries");

      const large = await call("POST", "/", {
        raw: "x".repeat(MAX_REQUEST_BYTES + 1),
        headers: aws,
      });
      assert.equal(large.status, 413);
      assert.equal(large.body.__type, "PayloadTooLarge");

      assertError(await call("POST", "/", { json: { Entries: [] } }), 404, "RouteNotFound");
    });

    test("contract - POST /v1/buses/{bus}/cloudevents takes binary, structured and batched mode", async () => {
      const binary = await call("POST", "/v1/buses/{bus}/cloudevents", {
        params: { bus: "orders" },
        raw: JSON.stringify({ id: "o-9", total: 5 }),
        headers: {
          "content-type": "application/json",
          "ce-specversion": "1.0",
          "ce-id": "ct-bin-1",
          "ce-source": "shop.orders",
          "ce-type": "order.created",
        },
      });
      assert.equal(binary.status, 200);
      assert.deepEqual(binary.body, { id: "ct-bin-1" });

      const text = await call("POST", "/v1/buses/{bus}/cloudevents", {
        params: { bus: "orders" },
        raw: "hello",
        headers: {
          "content-type": "text/plain",
          "ce-specversion": "1.0",
          "ce-id": "ct-bin-2",
          "ce-source": "shop.orders",
          "ce-type": "note",
        },
      });
      assert.equal(text.status, 200);

      const structured = await call("POST", "/v1/buses/{bus}/cloudevents", {
        params: { bus: "orders" },
        raw: JSON.stringify({
          specversion: "1.0",
          id: "ct-str-1",
          source: "shop.orders",
          type: "order.updated",
          data: { id: "o-9" },
        }),
        headers: { "content-type": "application/cloudevents+json" },
      });
      assert.equal(structured.status, 200);
      assert.deepEqual(structured.body, { id: "ct-str-1" });

      const batch = await call("POST", "/v1/buses/{bus}/cloudevents", {
        params: { bus: "orders" },
        raw: JSON.stringify([
          { specversion: "1.0", id: "ct-bat-1", source: "shop.orders", type: "order.updated" },
          { specversion: "1.0", id: "ct-bat-2", type: "order.updated" },
          {
            specversion: "1.0",
            id: "ct-bat-3",
            source: "shop.orders",
            type: "t",
            data: "x".repeat(MAX_EVENT_BYTES),
          },
        ]),
        headers: { "content-type": "application/cloudevents-batch+json" },
      });
      assert.equal(batch.status, 200);
      assert.equal(batch.body.failedCount, 2);
      const results = batch.body.results as Obj[];
      assert.deepEqual(results[0], { id: "ct-bat-1" });
      assert.equal((results[1]!.error as Obj).code, "ValidationError");
      assert.equal((results[2]!.error as Obj).code, "EventTooLarge");
    });

    test("contract - POST /v1/buses/{bus}/cloudevents refuses an unknown bus, bad events and bodies", async () => {
      const structured = { "content-type": "application/cloudevents+json" };
      const event = JSON.stringify({ specversion: "1.0", id: "x", source: "a", type: "b" });
      const path = "/v1/buses/{bus}/cloudevents";
      assertError(
        await call("POST", path, { params: { bus: "nope" }, raw: event, headers: structured }),
        404,
        "BusNotFound",
      );
      assertError(
        await call("POST", path, { params: { bus: "orders" }, raw: "{", headers: structured }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          raw: JSON.stringify({ specversion: "0.3", id: "x", source: "a", type: "b" }),
          headers: structured,
        }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          raw: "{}",
          headers: {
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-source": "a",
            "ce-type": "b",
          },
        }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          raw: "<e/>",
          headers: { "content-type": "application/cloudevents+xml" },
        }),
        415,
        "UnsupportedMediaType",
      );
      const tooMany = JSON.stringify(
        Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => ({
          specversion: "1.0",
          id: `m-${i}`,
          source: "a",
          type: "b",
        })),
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          raw: tooMany,
          headers: { "content-type": "application/cloudevents-batch+json" },
        }),
        400,
        "TooManyEntries",
      );
      const big = JSON.stringify({
        specversion: "1.0",
        id: "big",
        source: "a",
        type: "b",
        data: "x".repeat(MAX_EVENT_BYTES),
      });
      assertError(
        await call("POST", path, { params: { bus: "orders" }, raw: big, headers: structured }),
        413,
        "EventTooLarge",
      );
      const huge = JSON.stringify({
        specversion: "1.0",
        id: "huge",
        source: "a",
        type: "b",
        data: "x".repeat(MAX_REQUEST_BYTES),
      });
      assertError(
        await call("POST", path, { params: { bus: "orders" }, raw: huge, headers: structured }),
        413,
        "PayloadTooLarge",
      );
    });
  });

  describe("health and buses", () => {
    test("contract - GET /healthz says ok and the version", async () => {
      const answer = await call("GET", "/healthz");
      assert.equal(answer.status, 200);
      assert.equal(answer.body.status, "ok");
    });

    test("contract - GET /v1/buses lists default and the buses of rule files", async () => {
      const answer = await call("GET", "/v1/buses");
      assert.equal(answer.status, 200);
      const names = (answer.body.buses as Obj[]).map((b) => b.name);
      assert.ok(names.includes("default") && names.includes("orders"), JSON.stringify(names));
    });

    test("contract - POST /v1/buses creates a bus and refuses duplicates, bad names and bad bodies", async () => {
      const created = await call("POST", "/v1/buses", {
        json: { name: "ct-created", description: "made by the contract test" },
      });
      assert.equal(created.status, 201);
      assert.equal(created.body.name, "ct-created");
      assertError(
        await call("POST", "/v1/buses", { json: { name: "ct-created" } }),
        409,
        "BusAlreadyExists",
      );
      assertError(
        await call("POST", "/v1/buses", { json: { name: "no spaces" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", "/v1/buses", { json: { name: "ct-x", colour: "red" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", "/v1/buses", {
          raw: "",
          headers: { "content-type": "application/json" },
        }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", "/v1/buses", {
          raw: "{name",
          headers: { "content-type": "application/json" },
        }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", "/v1/buses", {
          raw: "name=x",
          headers: { "content-type": "application/x-www-form-urlencoded" },
        }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("POST", "/v1/buses", {
          json: { name: "ct-big", description: "x".repeat(MAX_REQUEST_BYTES) },
        }),
        413,
        "PayloadTooLarge",
      );
      assertError(
        await call("POST", "/v1/buses", {
          raw: `{"name": ${deep(100)}}`,
          headers: { "content-type": "application/json" },
        }),
        400,
        "JsonTooDeep",
      );
    });

    test("contract - GET /v1/buses/{bus} describes a bus with its last and dispatched offsets", async () => {
      const answer = await call("GET", "/v1/buses/{bus}", { params: { bus: "orders" } });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.name, "orders");
      assert.ok((answer.body.lastOffset as number) >= 1, "events were published to orders");
      assert.ok((answer.body.dispatchedOffset as number) <= (answer.body.lastOffset as number), JSON.stringify(answer.body));
      assertError(
        await call("GET", "/v1/buses/{bus}", { params: { bus: "nope" } }),
        404,
        "BusNotFound",
      );
    });

    test("contract - DELETE /v1/buses/{bus} deletes, and refuses default, unknown buses and buses with rules", async () => {
      await call("POST", "/v1/buses", { json: { name: "ct-doomed" } });
      const deleted = await call("DELETE", "/v1/buses/{bus}", { params: { bus: "ct-doomed" } });
      assert.equal(deleted.status, 204);
      assertError(
        await call("GET", "/v1/buses/{bus}", { params: { bus: "ct-doomed" } }),
        404,
        "BusNotFound",
      );
      assertError(
        await call("DELETE", "/v1/buses/{bus}", { params: { bus: "ct-doomed" } }),
        404,
        "BusNotFound",
      );
      assertError(
        await call("DELETE", "/v1/buses/{bus}", { params: { bus: "default" } }),
        409,
        "BusProtected",
      );
      assertError(
        await call("DELETE", "/v1/buses/{bus}", { params: { bus: "orders" } }),
        409,
        "BusProtected",
      );

      await call("POST", "/v1/buses", { json: { name: "ct-ruled" } });
      const rule = await call("POST", "/v1/buses/{bus}/rules", {
        params: { bus: "ct-ruled" },
        json: apiRule("r1", receiver.url),
      });
      assert.equal(rule.status, 201);
      assertError(
        await call("DELETE", "/v1/buses/{bus}", { params: { bus: "ct-ruled" } }),
        409,
        "BusHasRules",
      );
      const forced = await call("DELETE", "/v1/buses/{bus}", {
        params: { bus: "ct-ruled" },
        query: { force: "true" },
      });
      assert.equal(forced.status, 204);
    });
  });

  describe("rules", () => {
    test("contract - POST /v1/buses/{bus}/rules creates a rule and refuses bad ones", async () => {
      const path = "/v1/buses/{bus}/rules";
      const created = await call("POST", path, {
        params: { bus: "orders" },
        json: apiRule("big-orders", receiver.url),
      });
      assert.equal(created.status, 201);
      assert.equal(created.body.name, "big-orders");

      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          json: apiRule("big-orders", receiver.url),
        }),
        409,
        "RuleAlreadyExists",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          json: apiRule("file-rule", receiver.url),
        }),
        409,
        "RuleManagedByFile",
      );
      assertError(
        await call("POST", path, { params: { bus: "nope" }, json: apiRule("r", receiver.url) }),
        404,
        "BusNotFound",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          json: { ...apiRule("r", receiver.url), colour: "red" },
        }),
        400,
        "InvalidRule",
      );
      assertError(
        await call("POST", path, { params: { bus: "orders" }, json: { name: "r" } }),
        400,
        "InvalidRule",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          json: { name: "r", pattern: { data: { total: [{ numeric: [">"] }] } } },
        }),
        400,
        "InvalidEventPattern",
      );
      const badTransform = apiRule("r", receiver.url);
      (badTransform.targets as Obj[])[0]!.transform = "{ unclosed";
      assertError(
        await call("POST", path, { params: { bus: "orders" }, json: badTransform }),
        400,
        "InvalidTransform",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          raw: "{",
          headers: { "content-type": "application/json" },
        }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders" },
          raw: "name: r",
          headers: { "content-type": "application/yaml" },
        }),
        415,
        "UnsupportedMediaType",
      );
      const huge = { ...apiRule("r", receiver.url), description: "x".repeat(MAX_REQUEST_BYTES) };
      assertError(
        await call("POST", path, { params: { bus: "orders" }, json: huge }),
        413,
        "PayloadTooLarge",
      );
    });

    test("contract - GET /v1/buses/{bus}/rules lists rules from files and from the API", async () => {
      const answer = await call("GET", "/v1/buses/{bus}/rules", { params: { bus: "orders" } });
      assert.equal(answer.status, 200);
      const names = (answer.body.rules as Obj[]).map((r) => r.name);
      assert.ok(names.includes("file-rule") && names.includes("big-orders"), JSON.stringify(names));
      assertError(
        await call("GET", "/v1/buses/{bus}/rules", { params: { bus: "nope" } }),
        404,
        "BusNotFound",
      );
    });

    test("contract - GET /v1/buses/{bus}/rules/{name} gets a rule", async () => {
      const path = "/v1/buses/{bus}/rules/{name}";
      const fromApi = await call("GET", path, { params: { bus: "orders", name: "big-orders" } });
      assert.equal(fromApi.status, 200);
      assert.equal(fromApi.body.name, "big-orders");
      const fromFile = await call("GET", path, { params: { bus: "orders", name: "file-rule" } });
      assert.equal(fromFile.status, 200);
      assert.equal(fromFile.body.name, "file-rule");
      assertError(
        await call("GET", path, { params: { bus: "orders", name: "nope" } }),
        404,
        "RuleNotFound",
      );
      assertError(
        await call("GET", path, { params: { bus: "nope", name: "big-orders" } }),
        404,
        "BusNotFound",
      );
    });

    test("contract - PUT /v1/buses/{bus}/rules/{name} replaces an API rule and refuses file rules and bad bodies", async () => {
      const path = "/v1/buses/{bus}/rules/{name}";
      const params = { bus: "orders", name: "big-orders" };
      const { name: _name, ...withoutName } = apiRule("big-orders", receiver.url);
      const replaced = await call("PUT", path, {
        params,
        json: { ...withoutName, description: "Replaced" },
      });
      assert.equal(replaced.status, 200);
      assert.equal(replaced.body.name, "big-orders");

      assertError(
        await call("PUT", path, { params, json: { ...withoutName, name: "other" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("PUT", path, {
          params,
          json: { ...withoutName, pattern: { source: "not-an-array" } },
        }),
        400,
        "InvalidEventPattern",
      );
      assertError(
        await call("PUT", path, {
          params,
          raw: "{",
          headers: { "content-type": "application/json" },
        }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("PUT", path, { params, raw: "x", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("PUT", path, {
          params: { bus: "orders", name: "file-rule" },
          json: withoutName,
        }),
        409,
        "RuleManagedByFile",
      );
      assertError(
        await call("PUT", path, { params: { bus: "nope", name: "big-orders" }, json: withoutName }),
        404,
        "BusNotFound",
      );
      assertError(
        await call("PUT", path, { params: { bus: "orders", name: "nope" }, json: withoutName }),
        404,
        "RuleNotFound",
      );
      const huge = { ...withoutName, description: "x".repeat(MAX_REQUEST_BYTES) };
      assertError(await call("PUT", path, { params, json: huge }), 413, "PayloadTooLarge");
    });

    test("contract - POST {name}:disable and {name}:enable switch a rule", async () => {
      const params = { bus: "orders", name: "big-orders" };
      const disabled = await call("POST", "/v1/buses/{bus}/rules/{name}:disable", { params });
      assert.equal(disabled.status, 200);
      assert.equal(disabled.body.enabled, false);
      const enabled = await call("POST", "/v1/buses/{bus}/rules/{name}:enable", { params });
      assert.equal(enabled.status, 200);
      assert.equal(enabled.body.enabled, true);
      assertError(
        await call("POST", "/v1/buses/{bus}/rules/{name}:enable", {
          params: { bus: "orders", name: "nope" },
        }),
        404,
        "RuleNotFound",
      );
      assertError(
        await call("POST", "/v1/buses/{bus}/rules/{name}:disable", {
          params: { bus: "nope", name: "big-orders" },
        }),
        404,
        "BusNotFound",
      );
      assertError(
        await call("POST", "/v1/buses/{bus}/rules/{name}:disable", {
          params: { bus: "orders", name: "file-rule" },
        }),
        409,
        "RuleManagedByFile",
      );
    });

    test("contract - POST {name}:dry-run runs a saved or proposed rule over the log, and refuses bad input", async () => {
      const path = "/v1/buses/{bus}/rules/{name}:dry-run";
      const saved = await call("POST", path, { params: { bus: "orders", name: "file-rule" } });
      assert.equal(saved.status, 200);
      assert.equal(saved.body.ruleSource, "saved");
      assert.ok((saved.body.matched as number) > 0, JSON.stringify(saved.body));
      const proposed = await call("POST", path, {
        params: { bus: "orders", name: "what-if" },
        json: {
          limit: 10_000,
          rule: {
            pattern: { source: ["shop.orders"] },
            targets: [
              { id: "data", webhook: { url: `${receiver.url}/ok` }, format: "data" },
              { id: "broken", webhook: { url: `${receiver.url}/ok` }, transform: '$error("no")' },
            ],
          },
        },
      });
      assert.equal(proposed.status, 200);
      const targets = ((proposed.body.matches as Obj[])[0]!.targets as Obj[]).map((t) => t.outcome);
      assert.deepEqual(targets, ["payload", "error"]);

      assertError(
        await call("POST", path, { params: { bus: "nope", name: "file-rule" } }),
        404,
        "BusNotFound",
      );
      assertError(
        await call("POST", path, { params: { bus: "orders", name: "nope" } }),
        404,
        "RuleNotFound",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders", name: "file-rule" },
          json: { limit: 10_001 },
        }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders", name: "what-if" },
          json: { rule: { pattern: { source: "shop.orders" } } },
        }),
        400,
        "InvalidEventPattern",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders", name: "file-rule" },
          raw: "{",
          headers: { "content-type": "application/json" },
        }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders", name: "file-rule" },
          raw: "limit: 5",
          headers: { "content-type": "application/yaml" },
        }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("POST", path, {
          params: { bus: "orders", name: "file-rule" },
          json: { rule: { pattern: {}, description: "x".repeat(MAX_REQUEST_BYTES) } },
        }),
        413,
        "PayloadTooLarge",
      );
    });

    test("contract - DELETE /v1/buses/{bus}/rules/{name} deletes an API rule and refuses file rules", async () => {
      const path = "/v1/buses/{bus}/rules/{name}";
      await call("POST", "/v1/buses/{bus}/rules", {
        params: { bus: "orders" },
        json: apiRule("short-lived", receiver.url),
      });
      const deleted = await call("DELETE", path, {
        params: { bus: "orders", name: "short-lived" },
      });
      assert.equal(deleted.status, 204);
      assertError(
        await call("GET", path, { params: { bus: "orders", name: "short-lived" } }),
        404,
        "RuleNotFound",
      );
      assertError(
        await call("DELETE", path, { params: { bus: "orders", name: "short-lived" } }),
        404,
        "RuleNotFound",
      );
      assertError(
        await call("DELETE", path, { params: { bus: "orders", name: "file-rule" } }),
        409,
        "RuleManagedByFile",
      );
      assertError(
        await call("DELETE", path, { params: { bus: "nope", name: "x" } }),
        404,
        "BusNotFound",
      );
    });

    test("contract - POST /v1/rules:reload reloads the files, and refuses a broken one whole", async () => {
      const ok = await call("POST", "/v1/rules:reload");
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.body, { files: 2, rules: 2, buses: 1 }); // orders.yaml, connections.yaml

      const broken = join(service.rulesDir, "broken.yaml");
      writeFileSync(
        broken,
        "bus: orders\nrules:\n  - name: bad\n    pattern: {source: shop.orders}\n",
      );
      try {
        const refused = await call("POST", "/v1/rules:reload");
        const error = assertError(refused, 400, "RulesReloadFailed");
        assert.match(String(error.message), /broken\.yaml/);
        const problems = (error.details as { problems: { file: string; line: number }[] }).problems;
        assert.ok(
          problems.some((p) => p.file.endsWith("broken.yaml") && p.line === 4),
          JSON.stringify(problems),
        );
      } finally {
        rmSync(broken);
      }
      // The running rules stayed.
      const still = await call("GET", "/v1/buses/{bus}/rules/{name}", {
        params: { bus: "orders", name: "file-rule" },
      });
      assert.equal(still.status, 200);
    });
  });

  describe("signing secrets", () => {
    const path = "/v1/buses/{bus}/rules/{rule}/targets/{target}/secrets";
    const one = "/v1/buses/{bus}/rules/{rule}/targets/{target}/secrets/{id}";
    const api = { bus: "orders", rule: "big-orders", target: "fulfil" };
    const file = { bus: "orders", rule: "file-rule", target: "ok" };

    test("contract - POST .../targets/{target}/secrets creates HMAC and ed25519 secrets, and refuses bad bodies", async () => {
      const hmac = await call("POST", path, { params: api });
      assert.equal(hmac.status, 201);
      assert.match(String(hmac.body.secret), /^whsec_/);
      assert.equal(hmac.headers.get("cache-control"), "no-store");
      const ed = await call("POST", path, {
        params: api,
        json: { kind: "ed25519", expireOthersAfterSeconds: 3600 },
      });
      assert.equal(ed.status, 201);
      assert.match(String(ed.body.publicKey), /^whpk_/);
      assert.equal(ed.body.secret, undefined);
      const onFileTarget = await call("POST", path, { params: file, json: {} });
      assert.equal(onFileTarget.status, 201);

      assertError(await call("POST", path, { params: api, json: { kind: "rsa" } }), 400, "ValidationError");
      assertError(
        await call("POST", path, { params: api, raw: "{", headers: { "content-type": "application/json" } }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", path, { params: api, raw: "kind=x", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("POST", path, { params: api, json: { kind: "x".repeat(MAX_REQUEST_BYTES) } }),
        413,
        "PayloadTooLarge",
      );
      assertError(await call("POST", path, { params: { ...api, bus: "nope" } }), 404, "BusNotFound");
      assertError(await call("POST", path, { params: { ...api, rule: "nope" } }), 404, "RuleNotFound");
      assertError(await call("POST", path, { params: { ...api, target: "nope" } }), 404, "TargetNotFound");
    });

    test("contract - GET .../targets/{target}/secrets lists file and API secrets without the secrets", async () => {
      const listed = await call("GET", path, { params: api });
      assert.equal(listed.status, 200);
      const secrets = listed.body.secrets as Obj[];
      assert.deepEqual(secrets.map((s) => s.kind), ["hmac-sha256", "ed25519"]);
      assert.ok(secrets.every((s) => s.secret === undefined));
      const fromFile = await call("GET", path, { params: file });
      assert.deepEqual(
        (fromFile.body.secrets as Obj[]).map((s) => [s.id, s.source]).slice(0, 1),
        [["file-1", "file"]],
      );
      assert.ok(!JSON.stringify(fromFile.body).includes(FILE_SIGNING_SECRET.slice(6)));
      const rule = await call("GET", "/v1/buses/{bus}/rules/{name}", {
        params: { bus: "orders", name: "file-rule" },
      });
      assert.deepEqual(((rule.body.definition as Obj).targets as Obj[])[0]!.signing, { secrets: ["whsec_***"] });
      assertError(await call("GET", path, { params: { ...api, bus: "nope" } }), 404, "BusNotFound");
      assertError(await call("GET", path, { params: { ...api, target: "nope" } }), 404, "TargetNotFound");
    });

    test("contract - DELETE .../secrets/{id} revokes, and refuses unknown and file secrets", async () => {
      const created = await call("POST", path, { params: api });
      const revoked = await call("DELETE", one, { params: { ...api, id: String(created.body.id) } });
      assert.equal(revoked.status, 204);
      assertError(await call("DELETE", one, { params: { ...api, id: String(created.body.id) } }), 404, "SecretNotFound");
      assertError(await call("DELETE", one, { params: { ...file, id: "file-1" } }), 409, "RuleManagedByFile");
      assertError(await call("DELETE", one, { params: { ...api, target: "nope", id: "x" } }), 404, "TargetNotFound");
      assertError(await call("DELETE", one, { params: { ...api, bus: "nope", id: "x" } }), 404, "BusNotFound");
    });
  });

  describe("patterns", () => {
    test("contract - POST /v1/test-event-pattern says whether a pattern matches", async () => {
      const path = "/v1/test-event-pattern";
      const event = {
        source: "shop.orders",
        "detail-type": "order.created",
        detail: { total: 250 },
      };
      const yes = await call("POST", path, {
        json: { pattern: { detail: { total: [{ numeric: [">", 100] }] } }, event },
      });
      assert.equal(yes.status, 200);
      assert.equal(yes.body.match, true);
      const no = await call("POST", path, {
        json: { pattern: JSON.stringify({ source: ["elsewhere"] }), event: JSON.stringify(event) },
      });
      assert.equal(no.status, 200);
      assert.equal(no.body.match, false);

      const explained = await call("POST", path, {
        json: { pattern: { detail: { total: [{ numeric: [">", 300] }] } }, event, explain: true },
      });
      assert.equal(explained.status, 200);
      assert.equal(explained.body.match, false);
      const explanation = explained.body.explanation as Obj;
      assert.equal(explanation.match, false);
      assert.equal(
        explanation.summary,
        'no match: detail.total: found 250; none passed [{"numeric":[">",300]}]',
      );
      const why = await call("POST", path, {
        json: { pattern: { source: ["shop.orders"] }, event, explain: true },
      });
      assert.equal((why.body.explanation as Obj).matchedAlternative, 0);
      assertError(
        await call("POST", path, { json: { pattern: { source: ["a"] }, event, explain: "yes" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", path, { json: { pattern: { source: "shop.orders" }, event } }),
        400,
        "InvalidEventPattern",
      );
      assertError(
        await call("POST", path, { json: { pattern: { source: ["a"] } } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", path, { raw: "{", headers: { "content-type": "application/json" } }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", path, { raw: "x", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("POST", path, {
          json: { pattern: { source: ["a"] }, event: { pad: "x".repeat(MAX_REQUEST_BYTES) } },
        }),
        413,
        "PayloadTooLarge",
      );
    });
  });

  describe("reading the log and dead letters", () => {
    test("contract - GET /v1/buses/{bus}/events pages through the log", async () => {
      const path = "/v1/buses/{bus}/events";
      const first = await call("GET", path, { params: { bus: "orders" }, query: { limit: "2" } });
      assert.equal(first.status, 200);
      const events = first.body.events as Obj[];
      assert.equal(events.length, 2);
      assert.equal(first.body.nextAfter, events[1]!.offset);
      const next = await call("GET", path, {
        params: { bus: "orders" },
        query: { after: String(first.body.nextAfter), limit: "1000" },
      });
      assert.equal(next.status, 200);
      assert.equal((next.body.events as Obj[])[0]!.offset, (first.body.nextAfter as number) + 1);
      const end = await call("GET", path, {
        params: { bus: "orders" },
        query: { after: "999999" },
      });
      assert.deepEqual(end.body, { events: [], nextAfter: 999999 });

      assertError(
        await call("GET", path, { params: { bus: "orders" }, query: { limit: "0" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("GET", path, { params: { bus: "orders" }, query: { limit: "1001" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("GET", path, { params: { bus: "orders" }, query: { after: "-1" } }),
        400,
        "ValidationError",
      );
      assertError(await call("GET", path, { params: { bus: "nope" } }), 404, "BusNotFound");
    });

    test("contract - GET /v1/buses/{bus}/events/{id} finds an event by its id", async () => {
      const path = "/v1/buses/{bus}/events/{id}";
      const found = await call("GET", path, { params: { bus: "orders", id: "ct-str-1" } });
      assert.equal(found.status, 200);
      assert.equal((found.body.event as Obj).id, "ct-str-1");
      assertError(
        await call("GET", path, { params: { bus: "orders", id: "never-published" } }),
        404,
        "EventNotFound",
      );
    });

    // Every other bus-scoped route answers BusNotFound for an unknown bus; here a typo in the
    // bus reads as a missing event.
    test(
      "contract - GET /v1/buses/{bus}/events/{id} on an unknown bus says BusNotFound",
      async () => {
        assertError(
          await call("GET", "/v1/buses/{bus}/events/{id}", {
            params: { bus: "nope", id: "ct-str-1" },
          }),
          404,
          "BusNotFound",
        );
      },
    );

    test("contract - GET /v1/dead-letters and /v1/dead-letters/{id} show a rejected delivery", async () => {
      const published = await call("POST", "/v1/events", {
        json: {
          Entries: [
            { EventBusName: "orders", Source: "dlq.test", DetailType: "doomed", Detail: '{"n":1}' },
          ],
        },
      });
      assert.equal(published.body.FailedEntryCount, 0);
      const eventId = (published.body.Entries as Obj[])[0]!.EventId;

      let letters: Obj[] = [];
      for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
        const listed = await call("GET", "/v1/dead-letters", {
          query: { bus: "orders", rule: "to-dead-letters", target: "rejecting", limit: "10" },
        });
        assert.equal(listed.status, 200);
        letters = listed.body.deadLetters as Obj[];
        if (letters.length > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(letters.length, 1, "the rejected delivery was dead-lettered");
      assert.equal(letters[0]!.eventId, eventId);

      const one = await call("GET", "/v1/dead-letters/{id}", {
        params: { id: String(letters[0]!.id) },
      });
      assert.equal(one.status, 200);
      assert.equal((one.body.attempts as Obj[])[0]!.status, 400);

      const none = await call("GET", "/v1/dead-letters", { query: { bus: "default" } });
      assert.deepEqual(none.body, { deadLetters: [] });
      const before = await call("GET", "/v1/dead-letters", { query: { before: "1" } });
      assert.deepEqual(before.body, { deadLetters: [] });
      assertError(
        await call("GET", "/v1/dead-letters", { query: { limit: "many" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("GET", "/v1/dead-letters", { query: { before: "yesterday" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("GET", "/v1/dead-letters/{id}", { params: { id: "no-such-letter" } }),
        404,
        "DeadLetterNotFound",
      );
    });

    test("contract - dead letters: filters, :redrive, :purge and DELETE /v1/dead-letters/{id}", async () => {
      const published = await call("POST", "/v1/events", {
        json: {
          Entries: ["a", "b", "c"].map((n) => ({
            EventBusName: "orders",
            Source: "dlq.test",
            DetailType: "doomed",
            Detail: JSON.stringify({ n }),
          })),
        },
      });
      assert.equal(published.body.FailedEntryCount, 0);
      const rejected = async (count: number): Promise<Obj[]> => {
        let letters: Obj[] = [];
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
          const listed = await call("GET", "/v1/dead-letters", {
            query: { target: "rejecting", reason: "permanent failure", from: "0", to: new Date(Date.now() + 60_000).toISOString() },
          });
          letters = listed.body.deadLetters as Obj[];
          if (letters.length >= count) return letters;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.fail(`waited for ${count} dead letters, got ${letters.length}`);
      };
      const letters = await rejected(4);

      const [first, second] = letters;
      assert.equal((await call("DELETE", "/v1/dead-letters/{id}", { params: { id: String(first!.id) } })).status, 204);
      assertError(
        await call("DELETE", "/v1/dead-letters/{id}", { params: { id: String(first!.id) } }),
        404,
        "DeadLetterNotFound",
      );

      const one = await call("POST", "/v1/dead-letters:redrive", {
        json: { ids: [String(second!.id), "no-such-letter"], mode: "current" },
      });
      assert.deepEqual(one.body, { mode: "current", redriven: 1, skipped: 0, skips: [], notFound: ["no-such-letter"] });
      const filtered = await call("POST", "/v1/dead-letters:redrive", {
        json: { filter: { rule: "to-dead-letters", to: Date.now() }, mode: "original" },
      });
      assert.equal(filtered.status, 200);
      assert.equal(filtered.body.skipped, 0);
      assertError(await call("POST", "/v1/dead-letters:redrive", { json: {} }), 400, "ValidationError");
      assertError(
        await call("POST", "/v1/dead-letters:redrive", { json: { all: true, mode: "latest" } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", "/v1/dead-letters:redrive", { raw: "{", headers: { "content-type": "application/json" } }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", "/v1/dead-letters:redrive", { raw: "all", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("POST", "/v1/dead-letters:redrive", { json: { ids: ["x".repeat(MAX_REQUEST_BYTES)] } }),
        413,
        "PayloadTooLarge",
      );

      // The redriven ones are rejected again and come back; then they all go.
      await rejected(3);
      assertError(await call("POST", "/v1/dead-letters:purge", { json: { filter: {} } }), 400, "ValidationError");
      const purged = await call("POST", "/v1/dead-letters:purge", {
        json: { filter: { bus: "orders", target: "rejecting" } },
      });
      assert.ok((purged.body.purged as number) >= 3, JSON.stringify(purged.body));
      const none = await call("POST", "/v1/dead-letters:purge", { json: { ids: ["no-such-letter"] } });
      assert.deepEqual(none.body, { purged: 0, notFound: ["no-such-letter"] });
      const all = await call("POST", "/v1/dead-letters:purge", { json: { all: true } });
      assert.equal(all.status, 200);
      assertError(
        await call("POST", "/v1/dead-letters:purge", { raw: "all", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
    });

    // A filter given twice is the client's mistake, not a storage failure to retry.
    test(
      "contract - GET /v1/dead-letters with a filter given twice is a ValidationError",
      async () => {
        const query: [string, string][] = [
          ["bus", "a"],
          ["bus", "b"],
        ];
        assertError(await call("GET", "/v1/dead-letters", { query }), 400, "ValidationError");
      },
    );

    test("contract - GET /v1/events/{id}/trace tells an event's life, and refuses unknown and ambiguous ids", async () => {
      const path = "/v1/events/{id}/trace";
      const published = await call("POST", "/v1/events", {
        json: {
          Entries: [
            { EventBusName: "orders", Source: "shop.orders", DetailType: "order.created", Detail: '{"id":"t-1","total":1}' },
            { EventBusName: "orders", Source: "dlq.test", DetailType: "doomed", Detail: '{"n":"t"}' },
          ],
        },
      });
      assert.equal(published.body.FailedEntryCount, 0);
      const [delivered, doomed] = (published.body.Entries as Obj[]).map((e) => String(e.EventId));
      const traceWhen = async (id: string, ended: string): Promise<Answer> => {
        let answer: Answer | undefined;
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
          answer = await call("GET", path, { params: { id } });
          if (answer.status === 200 && answer.body.ended === ended) return answer;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.fail(`trace of ${id} never ended ${ended}: ${JSON.stringify(answer?.body)}`);
      };
      const ok = await traceWhen(delivered!, "delivered");
      const [okDelivery] = ok.body.deliveries as Obj[];
      assert.equal(okDelivery!.state, "succeeded");
      assert.equal(((okDelivery!.attempts as Obj[])[0]!).status, 200);
      const dead = await traceWhen(doomed!, "dead-lettered");
      assert.equal(((dead.body.deliveries as Obj[])[0]!.deadLetter as Obj).reason, "permanent failure on attempt 1: HTTP 400: no thanks");
      const onBus = await call("GET", path, { params: { id: delivered! }, query: { bus: "orders" } });
      assert.equal(onBus.body.bus, "orders");

      for (const bus of ["default", "orders"]) {
        const sent = await call("POST", "/v1/buses/{bus}/cloudevents", {
          params: { bus },
          json: { specversion: "1.0", id: "ct-trace-dup", source: "trace.test", type: "dup" },
          headers: { "content-type": "application/cloudevents+json" },
        });
        assert.equal(sent.status, 200);
      }
      const ambiguous = assertError(await call("GET", path, { params: { id: "ct-trace-dup" } }), 409, "EventIdAmbiguous");
      assert.deepEqual(ambiguous.details, { eventId: "ct-trace-dup", buses: ["default", "orders"] });
      const named = await call("GET", path, { params: { id: "ct-trace-dup" }, query: { bus: "default" } });
      assert.equal(named.body.ended, "no rules matched");
      assertError(await call("GET", path, { params: { id: "never-published" } }), 404, "EventNotFound");
      assertError(await call("GET", path, { params: { id: delivered! }, query: { bus: "nope" } }), 404, "BusNotFound");
      assertError(
        await call("GET", path, { params: { id: delivered! }, query: [["bus", "orders"], ["bus", "default"]] }),
        400,
        "ValidationError",
      );
    });
  });

  describe("connections", () => {
    const one = "/v1/connections/{name}";
    const apiKey = { authorization: { apiKey: { header: "x-api-key", value: "literal-api-key" } }, query: { region: "eu" } };

    test("contract - PUT /v1/connections/{name} creates, replaces, and refuses bad and file-managed connections", async () => {
      const created = await call("PUT", one, { params: { name: "partner" }, json: apiKey });
      assert.equal(created.status, 201);
      assert.deepEqual((created.body.definition as Obj).authorization, { apiKey: { header: "x-api-key", value: "***" } });
      const unsetVariable = await call("PUT", one, {
        params: { name: "partner" },
        json: { name: "partner", authorization: { basic: { username: "u", password: "env:RELAYBUS_CONTRACT_UNSET" } } },
      });
      assertError(unsetVariable, 400, "InvalidConnection");
      const again = await call("PUT", one, { params: { name: "partner" }, json: { ...apiKey, description: "Partner API" } });
      assert.equal(again.status, 200);
      assertError(await call("PUT", one, { params: { name: "partner" }, json: { name: "other", ...apiKey } }), 400, "ValidationError");
      assertError(await call("PUT", one, { params: { name: "from-file" }, json: apiKey }), 409, "ConnectionManagedByFile");
      assertError(
        await call("PUT", one, { params: { name: "partner" }, raw: "{", headers: { "content-type": "application/json" } }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("PUT", one, { params: { name: "partner" }, raw: "x", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("PUT", one, { params: { name: "partner" }, json: { description: "x".repeat(MAX_REQUEST_BYTES) } }),
        413,
        "PayloadTooLarge",
      );
    });

    test("contract - GET /v1/connections and /v1/connections/{name} show both origins, redacted", async () => {
      const list = await call("GET", "/v1/connections");
      assert.equal(list.status, 200);
      assert.deepEqual((list.body.connections as Obj[]).map((c) => [c.name, (c.origin as Obj).kind]), [
        ["from-file", "file"],
        ["partner", "api"],
      ]);
      assert.ok(!JSON.stringify(list.body).includes("literal-api-key") && !JSON.stringify(list.body).includes("file-password"));
      const file = await call("GET", one, { params: { name: "from-file" } });
      assert.equal((file.body.origin as Obj).pointer, "/connections/0");
      assertError(await call("GET", one, { params: { name: "nope" } }), 404, "ConnectionNotFound");
    });

    test("contract - DELETE /v1/connections/{name} refuses used and file connections unless forced", async () => {
      const rule = await call("POST", "/v1/buses/{bus}/rules", {
        params: { bus: "default" },
        json: {
          name: "uses-partner",
          pattern: { source: ["connections.contract"] },
          targets: [{ id: "t", webhook: { url: `${receiver.url}/partner` }, connection: "partner" }],
        },
      });
      assert.equal(rule.status, 201);
      const unknown = await call("POST", "/v1/buses/{bus}/rules", {
        params: { bus: "default" },
        json: { name: "uses-ghost", pattern: { source: ["x"] }, targets: [{ id: "t", webhook: { url: `${receiver.url}/x` }, connection: "ghost" }] },
      });
      assertError(unknown, 400, "InvalidRule");
      const inUse = assertError(await call("DELETE", one, { params: { name: "partner" } }), 409, "ConnectionInUse");
      assert.deepEqual((inUse.details as Obj).usedBy, [{ bus: "default", rule: "uses-partner", target: "t" }]);
      assertError(await call("DELETE", one, { params: { name: "partner" }, query: { force: "yes" } }), 400, "ValidationError");
      assertError(await call("DELETE", one, { params: { name: "from-file" } }), 409, "ConnectionManagedByFile");
      assert.equal((await call("DELETE", one, { params: { name: "partner" }, query: { force: "true" } })).status, 204);
      assertError(await call("DELETE", one, { params: { name: "partner" } }), 404, "ConnectionNotFound");
      assert.equal((await call("DELETE", "/v1/buses/{bus}/rules/{name}", { params: { bus: "default", name: "uses-partner" } })).status, 204);
    });
  });

  describe("target status", () => {
    const status = "/v1/buses/{bus}/rules/{rule}/targets/{target}/status";
    const disable = "/v1/buses/{bus}/rules/{rule}/targets/{target}:disable";
    const enable = "/v1/buses/{bus}/rules/{rule}/targets/{target}:enable";
    const file = { bus: "orders", rule: "file-rule", target: "ok" };

    test("contract - GET .../targets/{target}/status, POST :disable and :enable", async () => {
      const fresh = await call("GET", status, { params: file });
      assert.equal(fresh.status, 200);
      assert.equal(fresh.body.state, "enabled");
      assert.equal(fresh.body.reason, undefined);

      const disabled = await call("POST", disable, { params: file, json: { reason: "receiver moving" } });
      assert.equal(disabled.status, 200);
      assert.equal(disabled.body.state, "disabled");
      assert.equal(disabled.body.reason, "disabled through the API: receiver moving");
      assert.equal(disabled.body.cause, "api");
      assert.match(String(disabled.body.disabledAt), /^\d{4}-\d\d-\d\dT/);
      const again = await call("POST", disable, { params: file });
      assert.equal(again.body.reason, "disabled through the API: receiver moving", "the first reason stays");
      const shown = await call("GET", status, { params: file });
      assert.equal(shown.body.state, "disabled");
      const rule = await call("GET", "/v1/buses/{bus}/rules/{name}", {
        params: { bus: "orders", name: "file-rule" },
      });
      assert.equal(((rule.body.targetStatus as Obj).ok as Obj).state, "disabled");

      const enabled = await call("POST", enable, { params: file });
      assert.equal(enabled.status, 200);
      // The engine made the target's circuit breaker when it first had a delivery for it.
      assert.deepEqual(enabled.body, { state: "enabled", circuit: { state: "closed", consecutiveFailures: 0 } });
      assert.equal((await call("POST", enable, { params: file, json: {} })).status, 200);
    });

    test("contract - target status routes refuse bad bodies and unknown targets", async () => {
      assertError(await call("POST", disable, { params: file, json: { reason: "" } }), 400, "ValidationError");
      assertError(await call("POST", disable, { params: file, json: { why: "x" } }), 400, "ValidationError");
      assertError(
        await call("POST", disable, { params: file, json: { reason: "x".repeat(513) } }),
        400,
        "ValidationError",
      );
      assertError(
        await call("POST", disable, { params: file, json: { reason: "x".repeat(MAX_REQUEST_BYTES) } }),
        413,
        "PayloadTooLarge",
      );
      assertError(
        await call("POST", disable, { params: file, raw: "now", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(await call("POST", enable, { params: file, json: { force: true } }), 400, "ValidationError");
      assertError(
        await call("POST", enable, { params: file, raw: "now", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(await call("GET", status, { params: { ...file, bus: "nope" } }), 404, "BusNotFound");
      assertError(await call("GET", status, { params: { ...file, rule: "nope" } }), 404, "RuleNotFound");
      assertError(await call("GET", status, { params: { ...file, target: "nope" } }), 404, "TargetNotFound");
      assertError(await call("POST", disable, { params: { ...file, target: "nope" } }), 404, "TargetNotFound");
      assertError(await call("POST", enable, { params: { ...file, rule: "nope" } }), 404, "RuleNotFound");
      assert.equal((await call("GET", status, { params: file })).body.state, "enabled", "nothing refused was applied");
    });
  });

  describe("archives and replays", () => {
    test("contract - archives: create, list, get, delete, and their errors", async () => {
      const created = await call("POST", "/v1/archives", {
        json: { name: "ct-archive", bus: "orders", pattern: { "detail-type": ["order.created"] }, retentionDays: 7 },
      });
      assert.equal(created.status, 201);
      assert.equal(created.body.eventCount, 0);
      const listed = await call("GET", "/v1/archives");
      assert.ok((listed.body.archives as Obj[]).some((a) => a.name === "ct-archive"));
      const one = await call("GET", "/v1/archives/{name}", { params: { name: "ct-archive" } });
      assert.equal(one.body.bus, "orders");
      assert.equal(one.body.retentionDays, 7);
      assertError(await call("POST", "/v1/archives", { json: { name: "ct-archive", bus: "orders" } }), 409, "ArchiveAlreadyExists");
      assertError(await call("POST", "/v1/archives", { json: { name: "ct-other", bus: "nope" } }), 404, "BusNotFound");
      assertError(
        await call("POST", "/v1/archives", { json: { name: "ct-other", bus: "orders", pattern: { source: "shop" } } }),
        400,
        "InvalidEventPattern",
      );
      assertError(await call("POST", "/v1/archives", { json: { name: "ct-other" } }), 400, "ValidationError");
      assertError(
        await call("POST", "/v1/archives", { raw: "x", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("POST", "/v1/archives", { json: { name: "ct-other", bus: "orders", description: "x".repeat(MAX_REQUEST_BYTES) } }),
        413,
        "PayloadTooLarge",
      );
      assertError(await call("GET", "/v1/archives/{name}", { params: { name: "nope" } }), 404, "ArchiveNotFound");
      assert.equal((await call("DELETE", "/v1/archives/{name}", { params: { name: "ct-archive" } })).status, 204);
      assertError(await call("DELETE", "/v1/archives/{name}", { params: { name: "ct-archive" } }), 404, "ArchiveNotFound");
    });

    test("contract - replays: start, list, get, :cancel, and their errors", async () => {
      const started = await call("POST", "/v1/replays", {
        json: {
          name: "ct-replay",
          source: { bus: "orders" },
          fromTime: 0,
          toTime: new Date(Date.now() + 1_000).toISOString(),
          destination: { bus: "orders", rule: "file-rule", targetId: "ok" },
        },
      });
      assert.equal(started.status, 201);
      let replay: Obj = started.body;
      for (const deadline = Date.now() + 10_000; replay.state === "running"; ) {
        assert.ok(Date.now() < deadline, "the replay completes");
        await new Promise((r) => setTimeout(r, 20));
        replay = (await call("GET", "/v1/replays/{name}", { params: { name: "ct-replay" } })).body;
      }
      assert.equal(replay.state, "completed");
      assert.equal(replay.percent, 100);
      const listed = await call("GET", "/v1/replays", { query: { limit: "10" } });
      assert.ok((listed.body.replays as Obj[]).some((r) => r.name === "ct-replay"));
      const cancelled = await call("POST", "/v1/replays/{name}:cancel", { params: { name: "ct-replay" } });
      assert.equal(cancelled.body.state, "completed", "an ended replay stays as it ended");

      const base = { name: "ct-other", source: { bus: "orders" }, fromTime: 0, toTime: 1, destination: { bus: "orders" } };
      assertError(await call("POST", "/v1/replays", { json: { ...base, name: "ct-replay" } }), 409, "ReplayAlreadyExists");
      assertError(await call("POST", "/v1/replays", { json: { ...base, source: { archive: "nope" } } }), 404, "ArchiveNotFound");
      assertError(
        await call("POST", "/v1/replays", { json: { ...base, destination: { bus: "orders", rule: "file-rule", targetId: "nope" } } }),
        404,
        "TargetNotFound",
      );
      assertError(await call("POST", "/v1/replays", { json: { ...base, fromTime: "soon" } }), 400, "ValidationError");
      assertError(
        await call("POST", "/v1/replays", { raw: "x", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("POST", "/v1/replays", { json: { ...base, description: "x".repeat(MAX_REQUEST_BYTES) } }),
        413,
        "PayloadTooLarge",
      );
      assertError(await call("GET", "/v1/replays", { query: { limit: "0" } }), 400, "ValidationError");
      assertError(await call("GET", "/v1/replays/{name}", { params: { name: "nope" } }), 404, "ReplayNotFound");
      assertError(await call("POST", "/v1/replays/{name}:cancel", { params: { name: "nope" } }), 404, "ReplayNotFound");
    });
  });

  describe("streams", () => {
    const one = "/v1/streams/{name}";
    const bus = "ct-streams";
    /** A bus source reading `ct-streams` from its start, a webhook sink on the receiver. */
    const streamDefinition = (name: string, path: string, extra: Obj = {}): Obj => ({
      name,
      source: { bus: { bus, startAt: "oldest" } },
      sink: { webhook: { url: `${receiver.url}${path}`, mode: "batch" } },
      batch: { maxEvents: 10, maxWaitMs: 10 },
      ...extra,
    });
    /** GET /v1/streams/{name} until `ready` says yes. */
    const streamWhen = async (name: string, what: string, ready: (stream: Obj) => boolean): Promise<Obj> => {
      let stream: Obj = {};
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
        stream = (await call("GET", one, { params: { name } })).body;
        if (ready(stream)) return stream;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.fail(`stream ${name} never got ${what}: ${JSON.stringify(stream)}`);
    };
    const counters = (stream: Obj) => stream.counters as Obj;

    test("contract - GET /v1/connectors lists sources and sinks with their config schemas", async () => {
      const answer = await call("GET", "/v1/connectors");
      assert.equal(answer.status, 200);
      const connectors = answer.body.connectors as Obj[];
      const kinds = connectors.map((c) => `${String(c.kind)} ${String(c.name)}`);
      for (const expected of ["source bus", "sink bus", "sink webhook"]) {
        assert.ok(kinds.includes(expected), `${expected} in ${JSON.stringify(kinds)}`);
      }
      const webhook = connectors.find((c) => c.kind === "sink" && c.name === "webhook")!;
      assert.deepEqual((webhook.configSchema as Obj).required, ["url"]);
    });

    test("contract - POST /v1/streams creates a stream, and refuses bad, duplicate and file-managed ones", async () => {
      assert.equal((await call("POST", "/v1/buses", { json: { name: bus } })).status, 201);
      const published = await call("POST", "/v1/events", {
        json: {
          Entries: [1, 2, 3].map((n) => ({ EventBusName: bus, Source: "streams.test", DetailType: "t", Detail: JSON.stringify({ n }) })),
        },
      });
      assert.equal(published.body.FailedEntryCount, 0);

      const created = await call("POST", "/v1/streams", { json: streamDefinition("ct-stream", "/stream-ok") });
      assert.equal(created.status, 201);
      assert.deepEqual(created.body.origin, { kind: "api" });
      assert.equal(created.body.desired, "running");
      assert.deepEqual(created.body.capacity, { minCU: 1, maxCU: 1, currentCU: 1, billing: "cu" });

      assertError(
        await call("POST", "/v1/streams", { json: streamDefinition("ct-stream", "/stream-ok") }),
        409,
        "StreamAlreadyExists",
      );
      assertError(
        await call("POST", "/v1/streams", { json: streamDefinition(FILE_STREAM, "/stream-ok") }),
        409,
        "StreamManagedByFile",
      );
      const badConfig = assertError(
        await call("POST", "/v1/streams", {
          json: { ...streamDefinition("ct-bad", "/x"), sink: { webhook: { url: "ftp://files.example.com/" } } },
        }),
        400,
        "InvalidStream",
      );
      assert.match(String(badConfig.message), /\/sink\/webhook\/url/);
      const noSuchConnector = assertError(
        await call("POST", "/v1/streams", { json: { ...streamDefinition("ct-bad", "/x"), source: { nosuch: {} } } }),
        400,
        "InvalidStream",
      );
      assert.match(String(noSuchConnector.message), /no source connector named "nosuch"/);
      assertError(await call("POST", "/v1/streams", { json: { name: "ct-bad" } }), 400, "InvalidStream");
      assertError(
        await call("POST", "/v1/streams", { json: streamDefinition("ct-bad", "/x", { capacity: { minCU: 4, maxCU: 2 } }) }),
        400,
        "InvalidStream",
      );
      assertError(
        await call("POST", "/v1/streams", { json: streamDefinition("ct-bad", "/x", { filter: { source: "not-a-list" } }) }),
        400,
        "InvalidEventPattern",
      );
      assertError(
        await call("POST", "/v1/streams", { json: streamDefinition("ct-bad", "/x", { transform: "{ unclosed" }) }),
        400,
        "InvalidTransform",
      );
      assertError(
        await call("POST", "/v1/streams", { raw: "{", headers: { "content-type": "application/json" } }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("POST", "/v1/streams", { raw: "name: x", headers: { "content-type": "application/yaml" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("POST", "/v1/streams", {
          json: streamDefinition("ct-bad", "/x", { description: "x".repeat(MAX_REQUEST_BYTES) }),
        }),
        413,
        "PayloadTooLarge",
      );
    });

    test("contract - GET /v1/streams and /v1/streams/{name} show a running stream with its live figures, and a file stream", async () => {
      const running = await streamWhen("ct-stream", "its 3 events out", (s) => counters(s).eventsOut === 3);
      assert.equal(running.state, "running");
      assert.equal(running.position, "3", "the bus source's position: the last offset the sink confirmed");
      assert.equal(counters(running).eventsIn, 3);
      const live = running.live as Obj;
      assert.equal(live.state, "running");
      assert.equal(live.currentCU, 1);
      assert.equal(live.eventsInFlight, 0);
      assert.equal(typeof (live.quota as Obj).eventsPerSecond, "number");
      const delivered = receiver.requestsTo("/stream-ok").flatMap((r) => JSON.parse(r.body) as Obj[]);
      assert.deepEqual(delivered.map((e) => e.data), [{ n: 1 }, { n: 2 }, { n: 3 }]);

      const listed = await call("GET", "/v1/streams");
      assert.equal(listed.status, 200);
      const streams = listed.body.streams as Obj[];
      assert.deepEqual(streams.map((s) => s.name), ["ct-stream", FILE_STREAM]);
      const file = streams[1]!;
      const line = fileRules(receiver.url).split("\n").indexOf(`  - name: ${FILE_STREAM}`) + 1;
      assert.deepEqual(file.origin, { kind: "file", file: join(service.rulesDir, "orders.yaml"), line });
      assert.equal(file.state, "paused");
      assert.equal(file.live, undefined, "a paused stream has no live figures");

      assertError(await call("GET", one, { params: { name: "nope" } }), 404, "StreamNotFound");
    });

    test("contract - PUT /v1/streams/{name} replaces an API stream, and refuses file streams, unknown ones and bad bodies", async () => {
      const { name: _name, ...withoutName } = streamDefinition("ct-stream", "/stream-ok");
      const replaced = await call("PUT", one, {
        params: { name: "ct-stream" },
        json: { ...withoutName, capacity: { minCU: 2, maxCU: 2 } },
      });
      assert.equal(replaced.status, 200);
      assert.deepEqual(replaced.body.capacity, { minCU: 2, maxCU: 2, currentCU: 2, billing: "cu" });
      assert.equal(counters(replaced.body).eventsOut, 3, "a replace keeps the counters");

      const renamed = assertError(
        await call("PUT", one, { params: { name: "ct-stream" }, json: { ...withoutName, name: "other" } }),
        400,
        "InvalidStream",
      );
      assert.match(String(renamed.message), /^\/name:/);
      assertError(
        await call("PUT", one, { params: { name: "ct-stream" }, json: { ...withoutName, sink: { webhook: {} } } }),
        400,
        "InvalidStream",
      );
      assertError(await call("PUT", one, { params: { name: "nope" }, json: withoutName }), 404, "StreamNotFound");
      assertError(await call("PUT", one, { params: { name: FILE_STREAM }, json: withoutName }), 409, "StreamManagedByFile");
      assertError(
        await call("PUT", one, { params: { name: "ct-stream" }, raw: "{", headers: { "content-type": "application/json" } }),
        400,
        "InvalidJson",
      );
      assertError(
        await call("PUT", one, { params: { name: "ct-stream" }, raw: "x", headers: { "content-type": "text/plain" } }),
        415,
        "UnsupportedMediaType",
      );
      assertError(
        await call("PUT", one, { params: { name: "ct-stream" }, json: { ...withoutName, description: "x".repeat(MAX_REQUEST_BYTES) } }),
        413,
        "PayloadTooLarge",
      );
    });

    test("contract - GET /v1/streams/{name}/capacity tells the CU changes with why", async () => {
      const path = "/v1/streams/{name}/capacity";
      const answer = await call("GET", path, { params: { name: "ct-stream" }, query: { limit: "10" } });
      assert.equal(answer.status, 200);
      assert.equal(answer.body.currentCU, 2);
      const changes = answer.body.changes as Obj[];
      assert.equal(changes.length, 1, JSON.stringify(changes));
      assert.equal(changes[0]!.fromCU, 1);
      assert.equal(changes[0]!.toCU, 2);
      assert.match(String(changes[0]!.reason), /capacity bounds are now 2 to 2 CU/);
      const file = await call("GET", path, { params: { name: FILE_STREAM } });
      assert.deepEqual(file.body, { stream: FILE_STREAM, currentCU: 1, changes: [] });
      assertError(await call("GET", path, { params: { name: "ct-stream" }, query: { limit: "0" } }), 400, "ValidationError");
      assertError(await call("GET", path, { params: { name: "nope" } }), 404, "StreamNotFound");
    });

    test("contract - POST :pause, :resume and :start switch a stream", async () => {
      const paused = await call("POST", "/v1/streams/{name}:pause", { params: { name: "ct-stream" } });
      assert.equal(paused.status, 200);
      assert.equal(paused.body.desired, "paused");
      assert.equal(paused.body.state, "paused");
      assert.equal(paused.body.live, undefined);
      const resumed = await call("POST", "/v1/streams/{name}:resume", { params: { name: "ct-stream" } });
      assert.equal(resumed.status, 200);
      assert.equal(resumed.body.state, "running");
      assert.equal((resumed.body.live as Obj).state, "running");

      const later = await call("POST", "/v1/streams", { json: streamDefinition("ct-later", "/stream-later", { state: "paused" }) });
      assert.equal(later.status, 201);
      assert.equal(later.body.state, "paused");
      const started = await call("POST", "/v1/streams/{name}:start", { params: { name: "ct-later" } });
      assert.equal(started.status, 200);
      assert.equal(started.body.desired, "running");
      assert.equal(started.body.state, "running");
      await streamWhen("ct-later", "its 3 events out", (s) => counters(s).eventsOut === 3);

      for (const verb of ["pause", "resume", "start"]) {
        assertError(await call("POST", `/v1/streams/{name}:${verb}`, { params: { name: "nope" } }), 404, "StreamNotFound");
      }
    });

    test("contract - GET /v1/streams/{name}/dead-letters pages through what the sink refused", async () => {
      const path = "/v1/streams/{name}/dead-letters";
      receiver.always("/stream-refuses", { status: 400, body: "not here" });
      const created = await call("POST", "/v1/streams", {
        json: { ...streamDefinition("ct-refused", "/stream-refuses"), sink: { webhook: { url: `${receiver.url}/stream-refuses` } }, batch: { maxEvents: 1 } },
      });
      assert.equal(created.status, 201);
      await streamWhen("ct-refused", "3 dead letters", (s) => counters(s).eventsDeadLettered === 3);

      const first = await call("GET", path, { params: { name: "ct-refused" }, query: { limit: "2" } });
      assert.equal(first.status, 200);
      const letters = first.body.deadLetters as Obj[];
      assert.equal(letters.length, 2);
      assert.equal(first.body.next, letters[1]!.id);
      assert.equal(letters[0]!.stream, "ct-refused");
      assert.equal(letters[0]!.attempts, 1);
      assert.match(String(letters[0]!.reason), /the sink refused it: .*400/);
      assert.deepEqual((letters[0]!.event as Obj).data, { n: 1 });
      const rest = await call("GET", path, { params: { name: "ct-refused" }, query: { after: String(first.body.next) } });
      assert.deepEqual((rest.body.deadLetters as Obj[]).map((l) => (l.event as Obj).data), [{ n: 3 }]);
      assert.equal(rest.body.next, undefined, "a page that is not full is the last");
      const none = await call("GET", path, { params: { name: "ct-stream" } });
      assert.deepEqual(none.body, { deadLetters: [] });

      assertError(await call("GET", path, { params: { name: "ct-refused" }, query: { limit: "0" } }), 400, "ValidationError");
      assertError(await call("GET", path, { params: { name: "ct-refused" }, query: { after: "-1" } }), 400, "ValidationError");
      assertError(await call("GET", path, { params: { name: "nope" } }), 404, "StreamNotFound");
    });

    test("contract - POST /v1/streams/{name}/dead-letters:redrive and :purge send again or delete a stream's dead letters", async () => {
      const redrive = "/v1/streams/{name}/dead-letters:redrive";
      const purge = "/v1/streams/{name}/dead-letters:purge";
      const listed = (await call("GET", "/v1/streams/{name}/dead-letters", { params: { name: "ct-refused" } })).body.deadLetters as Obj[];
      assert.equal(listed.length, 3);
      assert.equal(listed[0]!.stage, "sink");
      // The sink still refuses: each comes back as a new dead letter.
      const again = await call("POST", redrive, { params: { name: "ct-refused" }, json: { ids: [listed[0]!.id] } });
      assert.equal(again.status, 200);
      assert.deepEqual(again.body, { redriven: 1, deadLetteredAgain: 1, more: false });
      receiver.always("/stream-refuses", { status: 200 });
      const sent = await call("POST", redrive, { params: { name: "ct-refused" }, json: { all: true } });
      assert.deepEqual(sent.body, { redriven: 3, deadLetteredAgain: 0, more: false });
      const purged = await call("POST", purge, { params: { name: "ct-refused" }, json: { all: true } });
      assert.deepEqual(purged.body, { purged: 0 });
      assertError(await call("POST", redrive, { params: { name: "ct-refused" }, json: { ids: [] } }), 400, "ValidationError");
      assertError(await call("POST", purge, { params: { name: "ct-refused" }, json: { all: false } }), 400, "ValidationError");
      assertError(await call("POST", redrive, { params: { name: "nope" }, json: { all: true } }), 404, "StreamNotFound");
      assertError(await call("POST", purge, { params: { name: "nope" }, json: { all: true } }), 404, "StreamNotFound");
      assertError(await call("POST", redrive, { params: { name: FILE_STREAM }, json: { all: true } }), 409, "StreamNotRunning");
    });

    test("contract - DELETE /v1/streams/{name} deletes an API stream with its dead letters, and refuses file streams", async () => {
      const deleted = await call("DELETE", one, { params: { name: "ct-refused" } });
      assert.equal(deleted.status, 204);
      assertError(await call("GET", one, { params: { name: "ct-refused" } }), 404, "StreamNotFound");
      assertError(
        await call("GET", "/v1/streams/{name}/dead-letters", { params: { name: "ct-refused" } }),
        404,
        "StreamNotFound",
      );
      assertError(await call("DELETE", one, { params: { name: "ct-refused" } }), 404, "StreamNotFound");
      const refused = assertError(await call("DELETE", one, { params: { name: FILE_STREAM } }), 409, "StreamManagedByFile");
      assert.deepEqual(refused.details, { stream: FILE_STREAM, file: join(service.rulesDir, "orders.yaml") });
      assert.equal((await call("DELETE", one, { params: { name: "ct-later" } })).status, 204);
    });

    test("contract - the audit log records each change of a stream", async () => {
      const answer = await call("GET", "/v1/audit", { query: { resource: "streams/ct-stream", action: "stream.*" } });
      assert.deepEqual(
        (answer.body.entries as Obj[]).map((e) => e.action),
        ["stream.resume", "stream.pause", "stream.replace", "stream.create"],
      );
      const started = await call("GET", "/v1/audit", { query: { resource: "streams/ct-later" } });
      assert.deepEqual(
        (started.body.entries as Obj[]).map((e) => e.action),
        ["stream.delete", "stream.resume", "stream.create"],
        "`:start` is audited as a resume",
      );
    });

    test("contract - a method a stream route does not declare answers 405 with Allow", async () => {
      const cases: [string, string, string][] = [
        ["POST", "/v1/connectors", "GET"],
        ["PATCH", "/v1/streams", "GET, POST"],
        ["PATCH", "/v1/streams/ct-stream", "GET, PUT, DELETE"],
        ["GET", "/v1/streams/ct-stream:pause", "POST"],
        ["GET", "/v1/streams/ct-stream:resume", "POST"],
        ["PUT", "/v1/streams/ct-stream:start", "POST"],
        ["POST", "/v1/streams/ct-stream/capacity", "GET"],
        ["DELETE", "/v1/streams/ct-stream/dead-letters", "GET"],
      ];
      const responses = (loadContract().components as Obj).responses as Obj;
      const declared = ((responses.MethodNotAllowed as Obj).content as Record<string, Obj>)["application/json"]!.schema;
      const schema = inlineRefs(declared) as Parameters<typeof schemaErrors>[0];
      for (const [method, path, allow] of cases) {
        const response = await fetch(`${service.url}${path}`, { method });
        assert.equal(response.status, 405, `${method} ${path}`);
        assert.equal(response.headers.get("allow"), allow, `${method} ${path}`);
        assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
        assert.deepEqual(schemaErrors(schema, await response.json()), [], `${method} ${path}`);
      }
    });
  });

  describe("schedules", () => {
    test("contract - GET /v1/schedules lists the rule files' schedules; GET one, or 404", async () => {
      const list = await call("GET", "/v1/schedules");
      assert.equal(list.status, 200);
      const schedules = list.body.schedules as Obj[];
      assert.deepEqual(schedules.map((s) => s.name), ["ct-schedule"]);
      const one = await call("GET", "/v1/schedules/{name}", { params: { name: "ct-schedule" } });
      assert.equal(one.status, 200);
      assert.equal(one.body.nextFireAt, "2099-01-01T00:00:00.000Z");
      const missing = await call("GET", "/v1/schedules/{name}", { params: { name: "nope" } });
      assert.equal(missing.status, 404);
      assert.equal((missing.body.error as Obj).code, "ScheduleNotFound");
    });
  });

  describe("usage", () => {
    test("contract - GET /v1/usage answers rows and totals as JSON and CSV, and refuses bad parameters", async () => {
      const published = await call("POST", "/v1/events", {
        json: { Entries: [{ EventBusName: "orders", Source: "usage.test", DetailType: "t", Detail: "{}" }] },
        headers: { "relaybus-include-units": "true" },
      });
      assert.equal(((published.body.Entries as Obj[])[0] as Obj).Units, 1);
      const batch = await call("POST", "/v1/buses/{bus}/cloudevents", {
        params: { bus: "orders" },
        raw: JSON.stringify([{ specversion: "1.0", id: "u-1", source: "usage.test", type: "t" }]),
        headers: { "content-type": "application/cloudevents-batch+json", "relaybus-include-units": "true" },
      });
      assert.deepEqual(batch.body.results, [{ id: "u-1", units: 1 }]);
      const one = await call("POST", "/v1/buses/{bus}/cloudevents", {
        params: { bus: "orders" },
        raw: JSON.stringify({ specversion: "1.0", id: "u-2", source: "usage.test", type: "t" }),
        headers: { "content-type": "application/cloudevents+json", "relaybus-include-units": "true" },
      });
      assert.deepEqual(one.body, { id: "u-2" });
      assert.equal(one.headers.get("relaybus-units"), "1");

      const hourly = await call("GET", "/v1/usage", { query: { groupBy: "meter,bus" } });
      assert.deepEqual(hourly.body.groupBy, ["bus", "meter"]);
      const publishes = (hourly.body.rows as Obj[]).filter((r) => r.bus === "orders" && r.meter === "publish");
      assert.ok(publishes.length >= 1);
      assert.ok((hourly.body.totals as Obj[]).some((t) => t.meter === "publish" && (t.quantity as number) >= 3));
      const daily = await call("GET", "/v1/usage", { query: { granularity: "day", groupBy: "meter", from: "2020-01-01" } });
      assert.equal(daily.body.from, "2020-01-01T00:00:00.000Z");
      assert.ok((daily.body.rows as Obj[]).some((r) => r.meter === "publish"));
      const csv = await fetch(`${service.url}/v1/usage?groupBy=bus,meter`, { headers: { accept: "text/csv" } });
      exercised.add("GET /v1/usage");
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get("content-type") ?? "", /^text\/csv/);
      const lines = (await csv.text()).split("\r\n");
      assert.equal(lines[0], "start,bus,meter,quantity,units");
      assert.ok(lines.some((line) => /,orders,publish,\d+,\d+$/.test(line)));
      const asCsv = await call("GET", "/v1/usage", { query: { format: "csv" } });
      assert.equal(asCsv.status, 200);

      assertError(await call("GET", "/v1/usage", { query: { groupBy: "bus,colour" } }), 400, "ValidationError");
      assertError(await call("GET", "/v1/usage", { query: { granularity: "week" } }), 400, "ValidationError");
      assertError(await call("GET", "/v1/usage", { query: { from: "yesterday" } }), 400, "ValidationError");
      assertError(await call("GET", "/v1/usage", { query: { from: "2026-02-01", to: "2026-01-01" } }), 400, "ValidationError");
      assertError(await call("GET", "/v1/usage", { query: { format: "xml" } }), 400, "ValidationError");
      assertError(
        await call("POST", "/v1/events", {
          json: { Entries: [{ Source: "usage.test", DetailType: "t", Detail: "{}" }] },
          headers: { "relaybus-include-units": "maybe" },
        }),
        400,
        "ValidationError",
      );
    });
  });

  describe("billing", () => {
    /** `YYYY-MM` of the month `offset` months from now (UTC). */
    const month = (offset: number) => {
      const now = new Date();
      return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1)).toISOString().slice(0, 7);
    };
    const records = "/v1/billing/periods/{period}/records";
    const close = "/v1/billing/periods/{period}:close";

    test("contract - billing periods: list, records as JSON and CSV, :close, and their errors", async () => {
      const listed = await call("GET", "/v1/billing/periods");
      const current = (listed.body.periods as Obj[]).find((p) => p.period === month(0));
      assert.equal(current?.state, "open");
      assert.equal(current?.preview, true);

      const json = await call("GET", records, { params: { period: month(0) } });
      assert.equal(json.body.preview, true);
      assert.equal(json.body.currency, "CNY");
      assert.ok(Array.isArray(json.body.lineItems));
      const csv = await call("GET", records, { params: { period: month(0) }, query: { format: "csv" } });
      assert.match(csv.headers.get("content-type") ?? "", /^text\/csv/);
      assert.match(String(csv.body as unknown), /^period,line,usage_period,/);
      const accepted = await call("GET", records, { params: { period: month(0) }, headers: { accept: "text/csv" } });
      assert.match(accepted.headers.get("content-type") ?? "", /^text\/csv/);

      const closed = await call("POST", close, { params: { period: month(-1) } });
      assert.equal(closed.body.closed, true);
      assert.equal((closed.body.period as Obj).state, "closed");
      const again = await call("POST", close, { params: { period: month(-1) } });
      assert.equal(again.body.closed, false, "a closed period is answered as it is");
      const final = await call("GET", records, { params: { period: month(-1) } });
      assert.equal(final.body.preview, false);
      assert.equal(final.body.state, "closed");

      assertError(await call("POST", close, { params: { period: month(0) } }), 409, "BillingPeriodNotEnded");
      assertError(await call("POST", close, { params: { period: "2026-13" } }), 400, "ValidationError");
      assertError(await call("GET", records, { params: { period: "may" } }), 400, "ValidationError");
      assertError(await call("GET", records, { params: { period: month(0) }, query: { format: "xml" } }), 400, "ValidationError");
      assertError(await call("GET", records, { params: { period: month(2) } }), 404, "BillingPeriodNotFound");
    });
  });

  describe("audit", () => {
    test("contract - GET /v1/audit and /v1/audit/{id}: the changes above, filtered and paged, and their errors", async () => {
      assert.equal((await call("POST", "/v1/buses", { json: { name: "audited" } })).status, 201);
      const listed = await call("GET", "/v1/audit", { query: { resource: "buses/audited", action: "bus.*", actor: "local" } });
      const entries = listed.body.entries as Obj[];
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.action, "bus.create");
      const page = await call("GET", "/v1/audit", { query: { limit: "1", from: "2020-01-01" } });
      assert.equal(page.body.nextBefore, (page.body.entries as Obj[])[0]?.id);
      const next = await call("GET", "/v1/audit", { query: { limit: "1", before: String(page.body.nextBefore) } });
      assert.ok(((next.body.entries as Obj[])[0]?.id as number) < (page.body.nextBefore as number));
      const one = await call("GET", "/v1/audit/{id}", { params: { id: String(entries[0]?.id) } });
      assert.deepEqual(one.body, entries[0]);
      assertError(await call("GET", "/v1/audit/{id}", { params: { id: "999999999" } }), 404, "AuditEntryNotFound");
      assertError(await call("GET", "/v1/audit", { query: { action: "bus.explode" } }), 400, "ValidationError");
      assertError(await call("GET", "/v1/audit", { query: { to: "tomorrow" } }), 400, "ValidationError");
    });
  });

  // Last: creating the first key turns auth on for every request after it.
  describe("keys", () => {
    test("contract - /v1/keys: the bootstrap, create, list, get, :revoke, and 401/403 once auth is on", async () => {
      assertError(await call("POST", "/v1/keys", { json: { name: "p", scopes: ["publish:orders"] } }), 400, "ValidationError");
      const root = await call("POST", "/v1/keys", { json: { name: "root", scopes: ["admin"] } });
      assert.equal(root.status, 201);
      const admin = { authorization: `Bearer ${String(root.body.token)}` };
      const publisher = await call("POST", "/v1/keys", {
        json: { name: "shop", scopes: ["publish:orders"], expiresAt: "2099-01-01T00:00:00Z" },
        headers: admin,
      });
      assert.equal(publisher.status, 201);
      assert.equal(publisher.body.expiresAt, "2099-01-01T00:00:00.000Z");
      const listed = await call("GET", "/v1/keys", { headers: admin });
      assert.equal((listed.body.keys as Obj[]).length, 2);
      const shown = await call("GET", "/v1/keys/{id}", { params: { id: String(publisher.body.id) }, headers: admin });
      assert.equal(shown.body.token, undefined);

      assertError(await call("GET", "/v1/keys"), 401, "Unauthorized");
      const asPublisher = { authorization: `Bearer ${String(publisher.body.token)}` };
      assertError(await call("GET", "/v1/keys", { headers: asPublisher }), 403, "Forbidden");
      assertError(await call("POST", "/v1/keys", { json: { name: "x", scopes: ["read"] }, headers: asPublisher }), 403, "Forbidden");
      assertError(await call("GET", "/v1/keys/{id}", { params: { id: "0000000000000000" }, headers: admin }), 404, "KeyNotFound");
      assertError(await call("POST", "/v1/keys", { json: { name: "x", scopes: ["write"] }, headers: admin }), 400, "ValidationError");
      // A key's publish rate (one event per 100 s: the second is refused however slow the first).
      const slow = await call("POST", "/v1/keys", { json: { name: "slow", scopes: ["publish:orders"], ratePerSecond: 0.01 }, headers: admin });
      assert.equal(slow.body.ratePerSecond, 0.01);
      const asSlow = { authorization: `Bearer ${String(slow.body.token)}` };
      const ordersEntry = { EventBusName: "orders", Source: "a", DetailType: "b", Detail: "{}" };
      const partly = await call("POST", "/v1/events", { json: { Entries: [ordersEntry, ordersEntry] }, headers: asSlow });
      assert.equal(((partly.body.Entries as Obj[])[1] as Obj).ErrorCode, "RateLimited");
      const throttled = await call("POST", "/v1/events", { json: { Entries: [ordersEntry] }, headers: asSlow });
      assertError(throttled, 429, "RateLimited");
      assert.equal(throttled.headers.get("retry-after"), "100");
      assertError(
        await call("POST", "/v1/buses/{bus}/cloudevents", {
          params: { bus: "orders" },
          raw: JSON.stringify({ specversion: "1.0", id: "slow-1", source: "a", type: "b" }),
          headers: { "content-type": "application/cloudevents+json", ...asSlow },
        }),
        429,
        "RateLimited",
      );
      assertError(
        await call("POST", "/v1/events", { json: { Entries: [{ Source: "a", DetailType: "b", Detail: "{}" }] } }),
        401,
        "Unauthorized",
      );
      assertError(
        await call("POST", "/v1/events", { json: { Entries: [{ Source: "a", DetailType: "b", Detail: "{}" }] }, headers: asPublisher }),
        403,
        "Forbidden",
      );
      assertError(
        await call("POST", "/v1/buses/{bus}/cloudevents", {
          params: { bus: "default" },
          raw: JSON.stringify({ specversion: "1.0", id: "k-1", source: "a", type: "b" }),
          headers: { "content-type": "application/cloudevents+json", ...asPublisher },
        }),
        403,
        "Forbidden",
      );
      const unsigned = await call("POST", "/", {
        raw: JSON.stringify({ Entries: [] }),
        headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutEvents" },
      });
      assert.equal(unsigned.status, 401);
      assert.equal(unsigned.body.__type, "UnrecognizedClientException");

      const revoked = await call("POST", "/v1/keys/{id}:revoke", { params: { id: String(publisher.body.id) }, headers: admin });
      assert.equal(revoked.body.state, "revoked");
      assertError(
        await call("POST", "/v1/keys/{id}:revoke", { params: { id: "0000000000000000" }, headers: admin }),
        404,
        "KeyNotFound",
      );
      assertError(await call("POST", "/v1/keys/{id}:revoke", { params: { id: "x" }, headers: asPublisher }), 401, "Unauthorized");
    });
  });

  test("contract - every route of openapi.yaml was exercised, and nothing else", () => {
    const declared = contractRoutes()
      .map((r) => routeKey(r.method, r.path))
      .sort();
    const called = [...exercised].sort();
    assert.ok(declared.length > 0, "openapi.yaml declares routes");
    assert.deepEqual(
      declared.filter((r) => !called.includes(r)),
      [],
      "routes in openapi.yaml that no test called",
    );
    assert.deepEqual(
      called.filter((r) => !declared.includes(r)),
      [],
      "routes called that openapi.yaml does not declare",
    );
  });
});
