/**
 * Starts a real Relaybus for a test: a fresh temp data dir and rules dir, the server on
 * 127.0.0.1 port 0. `close()` stops it and removes the directories.
 *
 * Test receivers listen on 127.0.0.1, which the default `delivery.outbound` refuses, so the
 * service allows loopback targets explicitly; a test of the default passes
 * `config: {delivery: {outbound: {allowLoopback: false}}}`.
 *
 * The log engine is `RELAYBUS_TEST_LOG_ENGINE`'s (`test-engine.ts`): on jetstream the service
 * uses the machine's NATS server with a stream prefix derived from its directory; `close()`
 * deletes those streams when the directory was the helper's own, and keeps them until the
 * end of the test file when the test passed `dir` (it may start a service on it again).
 * A test's own `config.log` still wins.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONFIG, type RelaybusConfig } from "../../src/config/defaults.js";
import { startRelaybus, type RelaybusService } from "../../src/api/service.js";
import { silentLogger } from "../../src/types.js";
import { requireService } from "./local-services.js";
import { forgetTestStreams, rememberTestStreams, TEST_NATS_URL, testLogEngine, testStreamPrefix } from "./test-engine.js";

export interface TestService extends RelaybusService {
  dir: string;
  rulesDir: string;
  /** POSTs JSON (or a string body) to a path of the service. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  get(path: string): Promise<Response>;
}

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
type ConfigOverrides = DeepPartial<RelaybusConfig>;

/** Starts a service; `rules` are written as files into its rules dir first. */
export async function startTestService(
  options: { rules?: Record<string, string>; config?: ConfigOverrides; dir?: string } = {},
): Promise<TestService> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "relaybus-test-"));
  const rulesDir = join(dir, "rules");
  mkdirSync(rulesDir, { recursive: true });
  for (const [name, text] of Object.entries(options.rules ?? {})) writeFileSync(join(rulesDir, name), text);
  const base = merge(DEFAULT_CONFIG, {
    server: { host: "127.0.0.1", port: 0 },
    dataDir: join(dir, "data"),
    rulesDir,
    watchRules: false,
    delivery: { outbound: { allowLoopback: true } },
    log: await testLogConfig(dir),
  });
  const config = merge(base, options.config ?? {});
  // The prefix whose streams this helper owns; a test that configures its own log owns its streams.
  const ownPrefix = testLogEngine === "jetstream" ? testStreamPrefix(dir) : undefined;
  const ownsStreams = config.log.engine === "jetstream" && config.log.jetstream.streamPrefix === ownPrefix;
  if (ownsStreams && ownPrefix !== undefined) rememberTestStreams(ownPrefix);
  const service = await startRelaybus(config, { logger: silentLogger });
  return {
    ...service,
    dir,
    rulesDir,
    post: (path, body, headers = {}) =>
      fetch(`${service.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    get: (path) => fetch(`${service.url}${path}`),
    close: async () => {
      await service.close();
      if (options.dir !== undefined) return;
      rmSync(dir, { recursive: true, force: true });
      if (ownsStreams && ownPrefix !== undefined) await forgetTestStreams(ownPrefix);
    },
  };
}

/** The `log` section for the engine of this run: nothing on sqlite (the defaults). */
async function testLogConfig(dir: string): Promise<ConfigOverrides["log"]> {
  if (testLogEngine !== "jetstream") return {};
  const missing = await requireService("nats");
  if (missing !== undefined) throw new Error(`RELAYBUS_TEST_LOG_ENGINE=jetstream: ${missing}`);
  return { engine: "jetstream", jetstream: { servers: [TEST_NATS_URL], streamPrefix: testStreamPrefix(dir) } };
}

/** `over` laid on `base`, objects merged key by key at every depth, arrays replaced. */
function merge(base: RelaybusConfig, over: ConfigOverrides): RelaybusConfig {
  return mergeObjects(structuredClone(base) as never, over as never) as unknown as RelaybusConfig;
}

function mergeObjects(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? mergeObjects(current, value) : value;
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
