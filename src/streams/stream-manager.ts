/**
 * All the streams of one Relaybus: those of the rule files and those created through the API,
 * each with its runner while it should run. The manager keeps definitions, runtime state and
 * runners in step: a changed definition restarts its stream from its saved position, pause
 * stops the runner (what was not confirmed is read again on resume), delete stops it and
 * forgets its position and dead letters.
 */
import type { LookupFunction } from "node:net";
import { Agent } from "undici";
import type { ConnectorDefinition, RelaybusPort } from "../../connectors/index.js";
import { compileOutboundPolicy, createGuardedConnector } from "../delivery/outbound-guard.js";
import type { RelaybusConfig } from "../config/defaults.js";
import { RelaybusError } from "../errors.js";
import type { CuChange, StreamDeadLetter, StreamRuntime, StreamStore } from "../log/stream-store.js";
import type { Clock, JsonObject, Logger } from "../types.js";
import { checkStream, type CompiledStream } from "./compile-stream.js";
import { createStreamFileSection } from "./stream-file-section.js";
import type { StreamDefinition, StreamOrigin } from "./stream-model.js";
import { startStreamRunner, type StreamRunner, type StreamRunStatus } from "./stream-runner.js";
import { problemsToError } from "../rules/compile-rule.js";

/** Most dead letters one redrive sends. */
export const MAX_REDRIVE = 1_000;

/** A stream as the API shows it. */
export interface StreamView {
  name: string;
  origin: StreamOrigin;
  definition: StreamDefinition;
  desired: StreamRuntime["desired"];
  state: StreamRuntime["state"];
  /** Why the stream failed. */
  reason?: string;
  position?: string;
  capacity: { minCU: number; maxCU: number; currentCU: number; billing: CompiledStream["capacity"]["billing"] };
  counters: Pick<
    StreamRuntime,
    "eventsIn" | "eventsOut" | "eventsFiltered" | "eventsDeadLettered" | "bytesOut" | "retries" | "throttledMs"
  >;
  lastEventAtMs?: number;
  /** Live figures while the stream runs. */
  live?: StreamRunStatus;
}

export interface StreamManagerDeps {
  store: StreamStore;
  config: Pick<RelaybusConfig, "limits" | "delivery" | "streams" | "transform">;
  /** Resolves host names for the outbound policy (tests); default `dns.lookup`. */
  lookup?: LookupFunction;
  connectors: readonly ConnectorDefinition[];
  clock: Clock;
  logger: Logger;
}

/** Creates the manager; streams run only after {@link StreamManager.start}. */
export function createStreamManager(deps: StreamManagerDeps) {
  const { store, config, clock, logger } = deps;
  const runners = new Map<string, { runner: StreamRunner; fingerprint: string }>();
  let fileStreams = new Map<string, CompiledStream>();
  const apiStreams = new Map<string, CompiledStream>();
  let relaybus: RelaybusPort | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  /** Whether streams run on this node: always alone, only while leading in a cluster. */
  let active = true;
  // Streams' HTTP sinks go through the outbound policy, as rule targets do.
  const httpDispatcher = new Agent({
    connect: createGuardedConnector(compileOutboundPolicy(config.delivery.outbound), deps.lookup === undefined ? {} : { lookup: deps.lookup }),
  });

  const fileSection = createStreamFileSection({
    config,
    connectors: deps.connectors,
    apiStreamExists: (name) => apiStreams.has(name),
    apiStreamCount: () => apiStreams.size,
    onApply(streams) {
      fileStreams = new Map(streams.map((s) => [s.name, s]));
      if (relaybus !== undefined) void reconcile();
    },
  });

  const compile = (definition: unknown, origin: StreamOrigin): CompiledStream => {
    const { stream, problems } = checkStream(definition, { config, connectors: deps.connectors, origin });
    if (stream === undefined) throw problemsToError(problems);
    return stream;
  };

  /** Reads the API streams' definitions from the store (at start, and after another node changed them). */
  const loadApiStreams = () => {
    const loaded = new Map<string, CompiledStream>();
    for (const stored of store.listDefinitions()) {
      try {
        loaded.set(stored.name, compileKeeping(stored.name, stored.definition));
      } catch (error) {
        // A definition stored by an older version that this one refuses: keep it, say why.
        logger.error("a stored stream no longer compiles; it does not run", { stream: stored.name, error: (error as Error).message });
      }
    }
    apiStreams.clear();
    for (const [name, stream] of loaded) apiStreams.set(name, stream);
  };
  /** The definitions' text the API streams were compiled from, to compile only what changed. */
  const apiStreamSources = new Map<string, string>();
  /** The compiled stream of an unchanged definition stays the same object (its runner keeps running). */
  const compileKeeping = (name: string, definition: unknown): CompiledStream => {
    const source = JSON.stringify(definition);
    const current = apiStreams.get(name);
    if (current !== undefined && apiStreamSources.get(name) === source) return current;
    const fresh = compile(definition, { kind: "api" });
    apiStreamSources.set(name, source);
    return current !== undefined && current.fingerprint === fresh.fingerprint ? current : fresh;
  };
  loadApiStreams();

  const streamNamed = (name: string): CompiledStream | undefined => fileStreams.get(name) ?? apiStreams.get(name);
  const mustExist = (name: string): CompiledStream => {
    const stream = streamNamed(name);
    if (stream === undefined) throw new RelaybusError("StreamNotFound", `stream ${JSON.stringify(name)} does not exist`, { details: { stream: name } });
    return stream;
  };

  /** The stream's runtime, created (as its definition's initial state) the first time it is asked for. */
  function runtimeOf(stream: CompiledStream): StreamRuntime {
    return store.runtime(stream.name) ?? store.ensureRuntime(stream.name, stream.initialState, stream.capacity.minCU, clock.nowMs());
  }

  function startRunner(stream: CompiledStream): void {
    if (relaybus === undefined || closed) return;
    store.setState(stream.name, "running", undefined, clock.nowMs());
    const runner = startStreamRunner({
      stream,
      store,
      relaybus,
      perCU: { eventsPerSecond: config.streams.cuEventsPerSecond, bytesPerSecond: config.streams.cuBytesPerSecond },
      scaleIntervalMs: config.streams.scaleIntervalMs,
      scaleDownAfterIntervals: config.streams.scaleDownAfterIntervals,
      transformTimeoutMs: config.transform.timeoutMs,
      httpDispatcher,
      clock,
      logger,
    });
    runners.set(stream.name, { runner, fingerprint: stream.fingerprint });
  }

  async function stopRunner(name: string): Promise<void> {
    const entry = runners.get(name);
    if (entry === undefined) return;
    runners.delete(name);
    await entry.runner.stop();
  }

  /** Brings runners in line with the definitions and each stream's desired state. */
  let reconciling: Promise<void> = Promise.resolve();
  function reconcile(): Promise<void> {
    reconciling = reconciling.then(async () => {
      // A node that does not lead its cluster runs no stream (see `setActive`).
      const wanted = active ? new Map<string, CompiledStream>([...apiStreams, ...fileStreams]) : new Map<string, CompiledStream>();
      for (const name of [...runners.keys()]) {
        const stream = wanted.get(name);
        // Paused elsewhere (another node of the cluster) also stops it here.
        const paused = stream !== undefined && store.runtime(name)?.desired === "paused";
        if (stream === undefined || paused || stream.fingerprint !== runners.get(name)!.fingerprint) await stopRunner(name);
      }
      for (const stream of wanted.values()) {
        const runtime = runtimeOf(stream);
        if (runtime.desired === "running" && !runners.has(stream.name)) startRunner(stream);
        if (runtime.desired === "paused" && runtime.state !== "paused") store.setState(stream.name, "paused", undefined, clock.nowMs());
      }
    });
    return reconciling;
  }

  function view(stream: CompiledStream): StreamView {
    const runtime = runtimeOf(stream);
    const live = runners.get(stream.name)?.runner.status();
    const state = live?.state === "failed" ? "failed" : runtime.state;
    return {
      name: stream.name,
      origin: stream.origin,
      definition: stream.definition,
      desired: runtime.desired,
      state,
      ...(runtime.reason === undefined ? {} : { reason: runtime.reason }),
      ...(runtime.position === undefined ? {} : { position: runtime.position }),
      capacity: { ...stream.capacity, currentCU: live?.currentCU ?? runtime.currentCU },
      counters: {
        eventsIn: runtime.eventsIn,
        eventsOut: runtime.eventsOut,
        eventsFiltered: runtime.eventsFiltered,
        eventsDeadLettered: runtime.eventsDeadLettered,
        bytesOut: runtime.bytesOut,
        retries: runtime.retries,
        throttledMs: runtime.throttledMs,
      },
      ...(runtime.lastEventAtMs === undefined ? {} : { lastEventAtMs: runtime.lastEventAtMs }),
      ...(live === undefined ? {} : { live }),
    };
  }

  const assertApiStream = (stream: CompiledStream): void => {
    if (stream.origin.kind === "file") {
      throw new RelaybusError(
        "StreamManagedByFile",
        `stream ${JSON.stringify(stream.name)} is defined in ${stream.origin.file}:${stream.origin.line}; change the file instead`,
        { details: { stream: stream.name, file: stream.origin.file } },
      );
    }
  };

  return {
    /** The owner of rule files' `streams:` sections, for the rule registry. */
    fileSection,
    /** Starts every stream that should run; `port` is how connectors reach the buses. */
    async start(port: RelaybusPort): Promise<void> {
      relaybus = port;
      await reconcile();
    },
    /**
     * Reads the API streams and their desired states again from the store, after another
     * node of the cluster changed them, and starts or stops runners to match.
     */
    reloadFromStore(): Promise<void> {
      loadApiStreams();
      return relaybus === undefined ? Promise.resolve() : reconcile();
    },
    /**
     * Runs the streams here (`true`, the default) or stops them all without pausing them
     * (`false`): in a cluster only the leading node runs them, each from its stored position.
     */
    setActive(value: boolean): Promise<void> {
      active = value;
      return relaybus === undefined ? Promise.resolve() : reconcile();
    },
    list: (): StreamView[] => [...new Map([...apiStreams, ...fileStreams]).values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(view),
    get: (name: string): StreamView => view(mustExist(name)),
    /** Creates (or with `replace`, replaces) an API stream; it starts as its `state` says. */
    async put(definition: unknown, mode: "create" | "replace", name?: string): Promise<StreamView> {
      const stream = compile(definition, { kind: "api" });
      if (name !== undefined && stream.name !== name) {
        throw new RelaybusError("InvalidStream", `/name: the body names ${JSON.stringify(stream.name)}, the path ${JSON.stringify(name)}`, {
          details: { field: "name" },
        });
      }
      const existing = streamNamed(stream.name);
      if (existing !== undefined) assertApiStream(existing);
      if (mode === "create" && existing !== undefined) {
        throw new RelaybusError("StreamAlreadyExists", `stream ${JSON.stringify(stream.name)} already exists`, { details: { stream: stream.name } });
      }
      if (mode === "replace" && existing === undefined) mustExist(stream.name);
      const count = new Set([...apiStreams.keys(), ...fileStreams.keys()]).size;
      if (existing === undefined && count >= config.limits.maxStreams) {
        throw new RelaybusError(
          "TooManyStreams",
          `there are ${count} streams already, the most this server runs (limits.maxStreams); delete one first`,
          { details: { limit: config.limits.maxStreams } },
        );
      }
      const nowMs = clock.nowMs();
      const previous = store.getDefinition(stream.name);
      store.putDefinition({
        name: stream.name,
        definition: definition as JsonObject,
        createdAtMs: previous?.createdAtMs ?? nowMs,
        updatedAtMs: nowMs,
      });
      apiStreams.set(stream.name, stream);
      await reconcile();
      return view(stream);
    },
    async delete(name: string): Promise<void> {
      const stream = mustExist(name);
      assertApiStream(stream);
      apiStreams.delete(name);
      await stopRunner(name);
      store.deleteStream(name);
      await reconcile();
    },
    /** Pauses: the runner stops; what was not confirmed is read again on resume. */
    async pause(name: string): Promise<StreamView> {
      const stream = mustExist(name);
      runtimeOf(stream);
      store.setDesired(name, "paused", clock.nowMs());
      await stopRunner(name);
      store.setState(name, "paused", undefined, clock.nowMs());
      await reconcile();
      return view(stream);
    },
    /** Resumes a paused stream, or starts a failed one again (from its saved position). */
    async resume(name: string): Promise<StreamView> {
      const stream = mustExist(name);
      runtimeOf(stream);
      store.setDesired(name, "running", clock.nowMs());
      const live = runners.get(name)?.runner.status();
      if (live?.state === "failed" || store.runtime(name)?.state === "failed") await stopRunner(name);
      await reconcile();
      return view(stream);
    },
    deadLetters(name: string, afterId: number, limit: number): StreamDeadLetter[] {
      mustExist(name);
      return store.listDeadLetters(name, afterId, limit);
    },
    /**
     * Sends a stream's dead letters again (these ids, or the oldest `MAX_REDRIVE` with `all`)
     * through its running runner; refuses (`StreamNotRunning`) while it is paused or failed.
     */
    async redriveDeadLetters(
      name: string,
      selection: { ids: readonly number[] } | { all: true },
    ): Promise<{ redriven: number; deadLetteredAgain: number; more: boolean }> {
      mustExist(name);
      const runner = runners.get(name)?.runner;
      if (runner === undefined || runner.status().state !== "running") {
        throw new RelaybusError("StreamNotRunning", `stream ${JSON.stringify(name)} is not running; resume it, then redrive`, {
          details: { stream: name },
        });
      }
      // One more than sent, to tell whether older ones wait (new dead letters a redrive makes do not count).
      const found =
        "all" in selection ? store.listDeadLetters(name, 0, MAX_REDRIVE + 1) : store.getDeadLetters(name, selection.ids.slice(0, MAX_REDRIVE));
      const result = await runner.redrive(found.slice(0, MAX_REDRIVE));
      return { ...result, more: found.length > MAX_REDRIVE };
    },
    /** Deletes a stream's dead letters (these ids, or all); returns how many. */
    purgeDeadLetters(name: string, selection: { ids: readonly number[] } | { all: true }): number {
      mustExist(name);
      return store.purgeDeadLetters(name, "all" in selection ? "all" : selection.ids);
    },
    capacityHistory(name: string, limit: number): CuChange[] {
      mustExist(name);
      return store.cuChanges(name, limit);
    },
    /** Stops every runner (what is not confirmed is read again on the next start). Idempotent. */
    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        await reconciling;
        await Promise.all([...runners.keys()].map(stopRunner));
        await httpDispatcher.close();
      })();
      return closing;
    },
  };
}

export type StreamManager = ReturnType<typeof createStreamManager>;
