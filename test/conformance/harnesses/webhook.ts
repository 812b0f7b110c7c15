/** Conformance harness of the webhook sink: a real HTTP receiver on loopback. */
import type { SinkDefinition } from "../../../connectors/index.js";
import { webhookSink } from "../../../connectors/webhook/index.js";
import type { CloudEvent } from "../../../src/types.js";
import { createReceiver } from "../../helpers/receiver.js";
import type { SinkHarness } from "../connector-harness.js";

export const sinkHarness: SinkHarness = {
  definition: webhookSink as SinkDefinition<never>,
  async setUp() {
    const receiver = await createReceiver();
    return {
      config: { url: `${receiver.url}/sink`, timeoutMs: 2_000 },
      invalidConfig: { url: "ftp://nowhere", extra: true },
      readBack: async () => receiver.requestsTo("/sink").map((r) => JSON.parse(r.body) as CloudEvent),
      failNext: (retryable) => receiver.script("/sink", [{ status: retryable ? 503 : 400 }]),
      close: () => receiver.close(),
    };
  },
};
