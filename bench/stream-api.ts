/**
 * The few calls of the streams API that bench/stream.ts makes, over Node's fetch: a handful
 * of requests a second, so the client's own speed does not matter here.
 */

/** What `GET /v1/streams/{name}` says, as far as the benchmark reads it. */
export interface StreamStatus {
  state: string;
  reason?: string;
  capacity: { currentCU: number };
  counters: { eventsIn: number; eventsOut: number; bytesOut: number; throttledMs: number };
  /** Server clock (ms since the epoch) of the last commit that carried events. */
  lastEventAtMs?: number;
  live?: {
    currentCU: number;
    eventsPerSecond: number;
    throttled: boolean;
    lastError?: { message: string };
  };
}

/** One CU change of `GET /v1/streams/{name}/capacity`. */
export interface CuChange {
  atMs: number;
  fromCU: number;
  toCU: number;
  reason: string;
}

export interface StreamApi {
  /** `POST /v1/streams`; throws unless 201. */
  create(definition: object): Promise<void>;
  status(name: string): Promise<StreamStatus>;
  /** The CU changes, newest first, and the CU count now. */
  capacity(name: string): Promise<{ currentCU: number; changes: CuChange[] }>;
  /** `DELETE /v1/streams/{name}`: the stream stops. */
  remove(name: string): Promise<void>;
}

/** A client of the server at `baseUrl` (`http://127.0.0.1:<port>`). */
export function createStreamApi(baseUrl: string): StreamApi {
  const call = async <T>(method: string, path: string, body?: object): Promise<T> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  };
  const at = (name: string) => `/v1/streams/${encodeURIComponent(name)}`;
  return {
    create: async (definition) => {
      await call("POST", "/v1/streams", definition);
    },
    status: (name) => call<StreamStatus>("GET", at(name)),
    capacity: (name) =>
      call<{ currentCU: number; changes: CuChange[] }>("GET", `${at(name)}/capacity`),
    remove: async (name) => {
      await call("DELETE", at(name));
    },
  };
}
