/**
 * `relaybus trace <id>`: the life of one event, from `GET /v1/events/{id}/trace` of a running
 * Relaybus (`--url`, `RELAYBUS_URL`, default http://127.0.0.1:8080), as a short timeline:
 * received, each delivery recorded, every attempt, and how each ended; then each target's
 * payload as sent.
 *
 *     relaybus trace 0190d3c2-7b1a-7c3e-9f10-2b4d6e8a0c11
 *     relaybus trace o-17 --bus orders --json
 *
 * Exit status 1 when the server refuses the request (an unknown id, one on several buses).
 */
import type { Command } from "commander";
import type { EventTrace, TraceDelivery } from "../api/routes/event-trace-routes.js";
import { callApi } from "./api-client.js";
import { indent, prettyBody } from "./text-format.js";

interface TraceFlags {
  bus?: string;
  url?: string;
  json?: boolean;
}

export function registerTraceCommand(program: Command): void {
  program
    .command("trace")
    .description("tell the life of one event: received, matched, each attempt, how it ended")
    .argument("<id>", "the event's id (the EventId PutEvents answered with)")
    .option("-b, --bus <name>", "the bus to look on (default: every bus)")
    .option("--json", "print the server's JSON")
    .option("--url <url>", "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)")
    .action(async (id: string, flags: TraceFlags) => {
      const query = flags.bus === undefined ? "" : `?${new URLSearchParams({ bus: flags.bus })}`;
      const trace = (await callApi(
        flags.url,
        "GET",
        `/v1/events/${encodeURIComponent(id)}/trace${query}`,
      )) as EventTrace;
      console.log(flags.json === true ? JSON.stringify(trace, null, 2) : traceText(trace));
    });
}

/** One line of the timeline: when, and what happened. */
interface Moment {
  at: string;
  /** `rule/target`, or empty for the event itself. */
  who: string;
  what: string;
}

/** The trace as text: a heading, the timeline in time order, then the payloads. */
export function traceText(trace: EventTrace): string {
  const lines = [`event ${trace.eventId} on bus ${trace.bus}: ${trace.ended}`];
  const r = trace.received;
  lines.push(
    r === null
      ? "  received:  no longer in the log (past log.retentionHours)"
      : `  received:  ${r.at}, offset ${r.offset}, ${r.sizeBytes} bytes, ${r.units} unit(s), ${r.source} / ${r.type}`,
  );
  lines.push(
    `  matched:   ${trace.matchedRules.length === 0 ? (trace.dispatched ? "no rule on record" : "not dispatched yet") : trace.matchedRules.join(", ")}`,
  );

  if (!trace.complete) {
    lines.push(
      "  note:      past delivery.traceRetentionHours: succeeded deliveries may have been pruned",
    );
  }

  const moments: Moment[] = [];
  if (r !== null) moments.push({ at: r.at, who: "", what: "received" });
  for (const d of trace.deliveries) moments.push(...momentsOf(d));
  // ISO times of one format sort as text; the sort is stable, so ties keep their order.
  moments.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  lines.push("", "timeline:");
  const width = Math.max(0, ...moments.map((m) => m.who.length));
  for (const m of moments) lines.push(`  ${m.at}  ${m.who.padEnd(width)}  ${m.what}`.trimEnd());

  for (const d of trace.deliveries) {
    lines.push(
      "",
      `payload of ${d.rule}/${d.targetId} (delivery ${d.deliveryId}, ${d.state}): POST ${d.url}`,
    );
    for (const [name, value] of Object.entries(d.payload.headers))
      lines.push(`  ${name}: ${value}`);
    lines.push("  body:", indent(indent(prettyBody(d.payload.body))));
  }
  return lines.join("\n");
}

function momentsOf(d: TraceDelivery): Moment[] {
  const who = `${d.rule}/${d.targetId}`;
  const moments: Moment[] = [{ at: d.createdAt, who, what: `matched, for ${d.url}` }];
  for (const a of d.attempts) {
    const status = a.status === undefined ? "no answer" : `HTTP ${a.status}`;
    const error = a.error === undefined ? "" : ` (${a.error})`;
    moments.push({
      at: a.at,
      who,
      what: `attempt ${a.attempt}: ${status}, ${a.outcome}, ${Math.round(a.latencyMs)} ms${error}`,
    });
  }
  if (d.finishedAt !== undefined) moments.push({ at: d.finishedAt, who, what: "succeeded" });
  if (d.deadLetter !== undefined)
    moments.push({ at: d.deadLetter.at, who, what: `dead-lettered: ${d.deadLetter.reason}` });
  if (d.nextAttemptAt !== undefined)
    moments.push({ at: d.nextAttemptAt, who, what: "pending: next attempt due" });
  return moments;
}
