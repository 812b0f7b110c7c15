/**
 * Starts a real Relaybus for a test: a fresh temp data dir and rules dir, the server on
 * 127.0.0.1 port 0. `close()` stops it and removes the directories.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONFIG, type RelaybusConfig } from "../../src/config/defaults.js";
import { startRelaybus, type RelaybusService } from "../../src/api/service.js";
import { silentLogger } from "../../src/types.js";

export interface TestService extends RelaybusService {
  dir: string;
  rulesDir: string;
  /** POSTs JSON (or a string body) to a path of the service. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  get(path: string): Promise<Response>;
}

type ConfigOverrides = { [K in keyof RelaybusConfig]?: Partial<RelaybusConfig[K]> | RelaybusConfig[K] };

/** Starts a service; `rules` are written as files into its rules dir first. */
export async function startTestService(
  options: { rules?: Record<string, string>; config?: ConfigOverrides; dir?: string } = {},
): Promise<TestService> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "relaybus-test-"));
  const rulesDir = join(dir, "rules");
  mkdirSync(rulesDir, { recursive: true });
  for (const [name, text] of Object.entries(options.rules ?? {})) writeFileSync(join(rulesDir, name), text);
  const config = merge(DEFAULT_CONFIG, {
    server: { host: "127.0.0.1", port: 0 },
    dataDir: join(dir, "data"),
    rulesDir,
    watchRules: false,
    ...options.config,
  } as ConfigOverrides);
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
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function merge(base: RelaybusConfig, over: ConfigOverrides): RelaybusConfig {
  const out = structuredClone(base) as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      typeof current === "object" && current !== null && typeof value === "object" && value !== null
        ? { ...(current as object), ...(value as object) }
        : value;
  }
  return out as unknown as RelaybusConfig;
}
