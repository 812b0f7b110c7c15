/**
 * Holds HTTP responses to the contract in `openapi.yaml` (OpenAPI 3.1).
 *
 *     assertMatchesContract("GET", "/v1/buses/{bus}", 200, "application/json", body);
 *     const body = await assertResponseMatchesContract("GET", "/v1/buses/{bus}", response);
 *
 * The document is loaded once; local `$ref`s (`#/components/...`) are resolved by inlining,
 * and each response schema is compiled once with ajv's JSON Schema 2020-12 dialect (which is
 * OpenAPI 3.1's) plus ajv-formats. OpenAPI-only schema keywords (`example`, `discriminator`,
 * `xml`, `externalDocs`) are declared as annotations, so they are accepted and ignored.
 *
 * {@link contractRoutes} lists the declared operations, so that a test can compare them with
 * what it called and fail when the document and the tests drift apart.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { parse as parseYaml } from "yaml";

/** Where the contract lives: the repository root. */
export const OPENAPI_PATH = fileURLToPath(new URL("../../openapi.yaml", import.meta.url));

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
/** Keywords of OpenAPI's Schema Object that are not JSON Schema 2020-12. */
const OPENAPI_ONLY_KEYWORDS = ["example", "discriminator", "xml", "externalDocs"];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonMap = { [key: string]: Json };

/** One operation of the contract: `POST /v1/buses/{bus}/rules`. */
export interface ContractRoute {
  method: string;
  path: string;
}

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

let loaded: { document: JsonMap; ajv: Ajv2020 } | undefined;
const compiled = new Map<string, ValidateFunction>();

/** The parsed `openapi.yaml`, with no `$ref` resolved (as written). */
export function loadContract(): JsonMap {
  return load().document;
}

/** Every (method, path template) the contract declares, methods upper-case. */
export function contractRoutes(): ContractRoute[] {
  const routes: ContractRoute[] = [];
  for (const [path, item] of Object.entries(asMap(load().document.paths, "paths"))) {
    for (const method of HTTP_METHODS) {
      if (asMap(item, path)[method] !== undefined)
        routes.push({ method: method.toUpperCase(), path });
    }
  }
  return routes;
}

/** `METHOD path`, the key routes are compared by. */
export function routeKey(method: string, path: string): string {
  return `${method.toUpperCase()} ${path}`;
}

/**
 * Asserts that a response is declared by the contract and that its body matches the
 * declared schema.
 *
 * @param pathTemplate The path as written in `openapi.yaml`, e.g. `/v1/buses/{bus}/rules/{name}`.
 * @param contentType The response's `content-type` (parameters such as `charset` are ignored);
 *   `undefined` or `null` for a response without a body.
 * @param body The parsed body (JSON) or `undefined` when there is none.
 * @throws Error naming the route and, for a schema mismatch, every failing JSON pointer.
 */
export function assertMatchesContract(
  method: string,
  pathTemplate: string,
  status: number,
  contentType: string | null | undefined,
  body: unknown,
): void {
  const where = `${routeKey(method, pathTemplate)} → ${status}`;
  const response = findResponse(method, pathTemplate, status);
  const content =
    response.content === undefined ? undefined : asMap(response.content, `${where} content`);
  if (content === undefined || Object.keys(content).length === 0) {
    if (body !== undefined && body !== "") {
      throw new Error(`${where}: the contract declares no body, got ${preview(body)}`);
    }
    return;
  }
  const mediaType = normalizeMediaType(contentType);
  if (mediaType === undefined) {
    throw new Error(
      `${where}: the contract declares a body (${Object.keys(content).join(", ")}), got no content-type`,
    );
  }
  if (content[mediaType] === undefined) {
    throw new Error(
      `${where}: content-type ${mediaType} is not declared (declared: ${Object.keys(content).join(", ")})`,
    );
  }
  const validate = validatorFor(method, pathTemplate, status, mediaType);
  if (!validate(body)) {
    throw new Error(
      `${where} (${mediaType}): the body does not match the contract:\n${describeErrors(validate.errors ?? [])}\nbody: ${preview(body)}`,
    );
  }
}

/**
 * Reads a fetch `Response`, checks it with {@link assertMatchesContract} (and that every
 * response header the contract marks `required` is present), and returns the parsed body:
 * JSON for JSON media types, text otherwise, `undefined` when empty.
 */
export async function assertResponseMatchesContract(
  method: string,
  pathTemplate: string,
  response: Response,
): Promise<unknown> {
  const text = await response.text();
  const contentType = response.headers.get("content-type");
  const mediaType = normalizeMediaType(contentType);
  let body: unknown;
  if (text === "") body = undefined;
  else if (mediaType !== undefined && isJsonMediaType(mediaType)) {
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      throw new Error(
        `${routeKey(method, pathTemplate)} → ${response.status}: content-type ${mediaType} but the body is not JSON: ${text.slice(0, 300)}`,
      );
    }
  } else body = text;
  assertMatchesContract(method, pathTemplate, response.status, contentType, body);
  const declared = findResponse(method, pathTemplate, response.status).headers;
  for (const [name, header] of Object.entries(
    declared === undefined ? {} : asMap(declared, "headers"),
  )) {
    const resolved = asMap(resolve(header, load().document), name);
    if (resolved.required === true && !response.headers.has(name)) {
      throw new Error(
        `${routeKey(method, pathTemplate)} → ${response.status}: required response header ${name} is missing`,
      );
    }
  }
  return body;
}

/**
 * The schema of a request body as declared (refs resolved), and its examples, so that tests
 * can check that the examples a newcomer pastes are valid.
 */
export function requestBodies(): {
  route: ContractRoute;
  mediaType: string;
  schema: Json;
  examples: Json[];
}[] {
  const document = load().document;
  const found: { route: ContractRoute; mediaType: string; schema: Json; examples: Json[] }[] = [];
  for (const route of contractRoutes()) {
    const operation = asMap(
      asMap(asMap(document.paths, "paths")[route.path], route.path)[route.method.toLowerCase()],
      route.method,
    );
    if (operation.requestBody === undefined) continue;
    const requestBody = asMap(resolve(operation.requestBody, document), "requestBody");
    for (const [mediaType, media] of Object.entries(asMap(requestBody.content, "content"))) {
      const resolvedMedia = asMap(resolve(media, document), mediaType);
      const examples: Json[] = [];
      if (resolvedMedia.example !== undefined) examples.push(resolvedMedia.example);
      for (const example of Object.values(asMap(resolvedMedia.examples ?? {}, "examples"))) {
        examples.push(asMap(resolve(example, document), "example").value ?? null);
      }
      found.push({
        route,
        mediaType,
        schema: resolve(resolvedMedia.schema ?? {}, document),
        examples,
      });
    }
  }
  return found;
}

/**
 * Compiles the schema of every declared response (refs resolved), so that a typo in any of
 * them (an unknown keyword, a broken `$ref`) fails at once, not when a test first meets it.
 * Returns how many schemas compiled.
 */
export function compileAllResponseSchemas(): number {
  let count = 0;
  const document = load().document;
  for (const route of contractRoutes()) {
    const operation = asMap(
      asMap(asMap(document.paths, "paths")[route.path], route.path)[route.method.toLowerCase()],
      route.method,
    );
    for (const status of Object.keys(asMap(operation.responses, "responses"))) {
      const content = findResponse(route.method, route.path, Number(status)).content;
      for (const mediaType of Object.keys(content === undefined ? {} : asMap(content, "content"))) {
        try {
          validatorFor(route.method, route.path, Number(status), mediaType);
        } catch (error) {
          throw new Error(
            `${routeKey(route.method, route.path)} → ${status} ${mediaType}: ${(error as Error).message}`,
          );
        }
        count++;
      }
    }
  }
  return count;
}

/** Validates `value` against a schema of the contract (refs resolved); returns the errors, empty when valid. */
export function schemaErrors(schema: Json, value: unknown): string[] {
  const validate = load().ajv.compile(schema as object);
  return validate(value) ? [] : describeErrors(validate.errors ?? []).split("\n");
}

function load(): { document: JsonMap; ajv: Ajv2020 } {
  if (loaded !== undefined) return loaded;
  const document = parseYaml(readFileSync(OPENAPI_PATH, "utf8")) as unknown;
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw new Error(`${OPENAPI_PATH}: not a YAML mapping`);
  }
  const map = document as JsonMap;
  if (typeof map.openapi !== "string" || !map.openapi.startsWith("3.1")) {
    throw new Error(`${OPENAPI_PATH}: expected openapi: 3.1.x, got ${JSON.stringify(map.openapi)}`);
  }
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictTypes: false,
    strictRequired: false,
    validateFormats: true,
  });
  addFormats(ajv);
  ajv.addVocabulary(OPENAPI_ONLY_KEYWORDS);
  loaded = { document: map, ajv };
  return loaded;
}

function findResponse(method: string, pathTemplate: string, status: number): JsonMap {
  const document = load().document;
  const item = asMap(document.paths, "paths")[pathTemplate];
  if (item === undefined) throw new Error(`${pathTemplate}: no such path in openapi.yaml`);
  const operation = asMap(item, pathTemplate)[method.toLowerCase()];
  if (operation === undefined)
    throw new Error(`${routeKey(method, pathTemplate)}: no such operation in openapi.yaml`);
  const responses = asMap(asMap(operation, method).responses, "responses");
  const response = responses[String(status)];
  if (response === undefined) {
    throw new Error(
      `${routeKey(method, pathTemplate)}: status ${status} is not declared (declared: ${Object.keys(responses).join(", ")})`,
    );
  }
  return asMap(resolve(response, document), `${status}`);
}

function validatorFor(
  method: string,
  pathTemplate: string,
  status: number,
  mediaType: string,
): ValidateFunction {
  const key = `${routeKey(method, pathTemplate)} ${status} ${mediaType}`;
  let validate = compiled.get(key);
  if (validate === undefined) {
    const content = asMap(findResponse(method, pathTemplate, status).content, "content");
    const media = asMap(resolve(content[mediaType] ?? null, load().document), mediaType);
    validate = load().ajv.compile(resolve(media.schema ?? {}, load().document) as object);
    compiled.set(key, validate);
  }
  return validate;
}

/**
 * Inlines every local `$ref` (`#/...`). A `$ref` with sibling keywords (allowed in OpenAPI
 * 3.1 schemas) becomes `allOf: [target, siblings]` so that neither is lost; a `$ref` whose
 * siblings are only annotations (`description`, `summary`) becomes the target. Cycles are
 * refused: the contract has no recursive schemas, and inlining one would not terminate.
 */
function resolve(value: Json | undefined, document: JsonMap, seen: readonly string[] = []): Json {
  if (value === undefined) return null;
  if (Array.isArray(value)) return value.map((item) => resolve(item, document, seen));
  if (typeof value !== "object" || value === null) return value;
  const ref = value.$ref;
  if (typeof ref === "string") {
    if (!ref.startsWith("#/"))
      throw new Error(`$ref ${ref}: only local references (#/...) are supported`);
    if (seen.includes(ref))
      throw new Error(`$ref ${ref}: circular (${[...seen, ref].join(" → ")})`);
    const target = resolve(pointerGet(document, ref), document, [...seen, ref]);
    const siblings = Object.fromEntries(
      Object.entries(value).filter(([k]) => k !== "$ref" && k !== "description" && k !== "summary"),
    );
    if (Object.keys(siblings).length === 0) return target;
    return { allOf: [target, resolve(siblings, document, seen)] };
  }
  const out: JsonMap = {};
  for (const [key, item] of Object.entries(value)) out[key] = resolve(item, document, seen);
  return out;
}

function pointerGet(document: JsonMap, ref: string): Json {
  let at: Json = document;
  for (const raw of ref.slice(2).split("/")) {
    const segment = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (typeof at !== "object" || at === null || Array.isArray(at) || !(segment in at)) {
      throw new Error(`$ref ${ref}: ${segment} not found`);
    }
    at = at[segment]!;
  }
  return at;
}

function asMap(value: Json | undefined, label: string): JsonMap {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`openapi.yaml: ${label} must be a mapping`);
  }
  return value;
}

function normalizeMediaType(contentType: string | null | undefined): string | undefined {
  if (contentType === undefined || contentType === null || contentType.trim() === "")
    return undefined;
  return contentType.split(";", 1)[0]!.trim().toLowerCase();
}

function isJsonMediaType(mediaType: string): boolean {
  return (
    /^application\/([a-z0-9.+-]*\+)?json$/.test(mediaType) ||
    mediaType.startsWith("application/x-amz-json")
  );
}

function describeErrors(errors: readonly ErrorObject[]): string {
  return errors
    .map(
      (e) =>
        `  ${e.instancePath === "" ? "(body)" : e.instancePath}: ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`,
    )
    .join("\n");
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 600 ? `${text.slice(0, 600)}…` : text;
}
