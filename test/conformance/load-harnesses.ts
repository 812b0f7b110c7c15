/** Finds every connector's conformance harness under `harnesses/`. */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BusRecord, RelaybusPort } from "../../connectors/index.js";
import { SinkError } from "../../connectors/index.js";
import type { HarnessModule, SinkHarness, SourceHarness } from "./connector-harness.js";

const HARNESS_DIR = join(dirname(fileURLToPath(import.meta.url)), "harnesses");

/** Every harness module, by file name. */
export async function loadHarnesses(): Promise<{ sinks: SinkHarness[]; sources: SourceHarness[] }> {
  const sinks: SinkHarness[] = [];
  const sources: SourceHarness[] = [];
  for (const file of readdirSync(HARNESS_DIR).filter((f) => f.endsWith(".ts")).sort()) {
    const module = (await import(pathToFileURL(join(HARNESS_DIR, file)).href)) as HarnessModule;
    if (module.sinkHarness) sinks.push(module.sinkHarness);
    if (module.sourceHarness) sources.push(module.sourceHarness);
  }
  return { sinks, sources };
}

/** The port given to connectors that do not use Relaybus's buses: every call refuses. */
export const noBusesPort: RelaybusPort = {
  busExists: () => false,
  publish: () => Promise.reject(new SinkError("this test has no Relaybus buses", { retryable: false })),
  read: (): Promise<BusRecord[]> => Promise.reject(new Error("this test has no Relaybus buses")),
  lastOffset: () => Promise.reject(new Error("this test has no Relaybus buses")),
  waitForEvents: () => Promise.resolve(),
};
