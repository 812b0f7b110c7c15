/**
 * What the dead-letter routes need beyond the store: reading a selection (query or body)
 * and rebuilding a dead letter's request from its target's current definition.
 *
 * The rebuild lives here, not in the log layer, because it needs the rules (the target's
 * format, transform, URL and retry policy as they are now) and the log (the event itself);
 * the store only moves rows and takes each rebuilt request through
 * {@link RedriveOptions.prepare}.
 */
import { buildTargetRequest } from "../delivery/build-request.js";
import { DEFAULT_FORMAT_OPTIONS, type FormatOptions } from "../delivery/format-payload.js";
import { RelaybusError } from "../errors.js";
import type {
  DeadLetter,
  DeadLetterSelection,
  LogEngine,
  RedriveOptions,
  RedrivePlan,
} from "../log/log-engine.js";
import type { RuleRegistry } from "../rules/rule-registry.js";

/**
 * How a redrive builds what it sends: `original`, the request stored with the dead letter,
 * as it was; `current`, a request rebuilt from the event in the log with the target's
 * current definition (format, transform, URL, headers, timeout and retry policy).
 */
export const REDRIVE_MODES = ["original", "current"] as const;
export type RedriveMode = (typeof REDRIVE_MODES)[number];

/** Ids one request may name at most. */
export const MAX_SELECTED_IDS = 1_000;

/** Which dead letters a redrive or purge request selected, and how. */
export interface DeadLetterSelector {
  selection: DeadLetterSelection;
  /** The ids the request named, when it named ids (to report the ones not found). */
  ids?: string[];
}

/** The filter fields of a selection, by their HTTP name (query and body alike). */
const FILTER_FIELDS = ["bus", "rule", "target", "reason", "from", "to"] as const;

/**
 * Reads a filter (query parameters or a body's `filter`) into a selection. Times are ms
 * since the epoch or RFC 3339 times; text fields must be non-empty strings. `where` names
 * the source in messages (`filter.` or nothing for the query).
 */
export function parseSelectionFields(
  fields: Readonly<Record<string, unknown>>,
  where: string,
): DeadLetterSelection {
  const selection: DeadLetterSelection = {};
  const text = (name: string): string | undefined => {
    const value = fields[name];
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value === "") {
      throw new RelaybusError(
        "ValidationError",
        `${where}${name}: expected a non-empty string, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  const bus = text("bus");
  const rule = text("rule");
  const target = text("target");
  const reason = text("reason");
  if (bus !== undefined) selection.bus = bus;
  if (rule !== undefined) selection.rule = rule;
  if (target !== undefined) selection.targetId = target;
  if (reason !== undefined) selection.reason = reason;
  if (fields.from !== undefined) selection.fromMs = parseTime(fields.from, `${where}from`);
  if (fields.to !== undefined) selection.toMs = parseTime(fields.to, `${where}to`);
  return selection;
}

/**
 * A time given as ms since the epoch (a number, or digits in a query string) or as an
 * RFC 3339 date-time (`2026-01-02T03:04:05Z`, or a date alone, meaning its midnight UTC).
 */
export function parseTime(value: unknown, field: string): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "string") {
    if (/^\d{1,15}$/.test(value)) return Number(value);
    if (
      /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2}))?$/.test(value)
    ) {
      const ms = Date.parse(value);
      if (Number.isFinite(ms)) return ms;
    }
  }
  throw new RelaybusError(
    "ValidationError",
    `${field}: expected ms since the epoch or an RFC 3339 time such as 2026-01-02T03:04:05Z, got ${JSON.stringify(value)}`,
  );
}

/**
 * Reads the body of `:redrive` or `:purge`: one of `ids` (1 to 1,000 delivery ids),
 * `filter` (at least one field) or `all: true`, plus `mode` when `modes` is true. An empty
 * selection is refused rather than taken as "everything": a client that lost its filter
 * must not redrive or purge every dead letter by accident.
 */
export function parseSelectorBody(
  body: unknown,
  options: { modes: boolean },
): DeadLetterSelector & { mode: RedriveMode } {
  if (body === undefined)
    throw new RelaybusError("ValidationError", `body: a JSON object is required; ${SELECT_HINT}`);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RelaybusError(
      "ValidationError",
      `body: must be a JSON object, got ${describeJson(body)}`,
    );
  }
  const { ids, filter, all, mode, ...rest } = body as Record<string, unknown>;
  const unknownField =
    Object.keys(rest)[0] ?? (!options.modes && mode !== undefined ? "mode" : undefined);
  if (unknownField !== undefined) {
    const known = options.modes ? '"ids", "filter", "all" and "mode"' : '"ids", "filter" and "all"';
    throw new RelaybusError(
      "ValidationError",
      `body: unknown field ${JSON.stringify(unknownField)}; this route takes ${known}`,
    );
  }

  let parsedMode: RedriveMode = "original";
  if (mode !== undefined) {
    if (!REDRIVE_MODES.includes(mode as RedriveMode)) {
      throw new RelaybusError(
        "ValidationError",
        `mode: expected "original" or "current", got ${JSON.stringify(mode)}`,
      );
    }
    parsedMode = mode as RedriveMode;
  }
  if (all !== undefined && typeof all !== "boolean") {
    throw new RelaybusError("ValidationError", `all: expected true, got ${JSON.stringify(all)}`);
  }

  const given = [ids !== undefined, filter !== undefined, all === true].filter(Boolean).length;
  if (given === 0)
    throw new RelaybusError("ValidationError", `body: no dead letters selected; ${SELECT_HINT}`);
  if (given > 1)
    throw new RelaybusError(
      "ValidationError",
      "body: give one of ids, filter and all: true, not several",
    );

  if (all === true) return { selection: {}, mode: parsedMode };
  if (ids !== undefined) {
    const list = parseIds(ids);
    return { selection: { ids: list }, ids: list, mode: parsedMode };
  }
  if (typeof filter !== "object" || filter === null || Array.isArray(filter)) {
    throw new RelaybusError(
      "ValidationError",
      `filter: must be a JSON object, got ${describeJson(filter)}`,
    );
  }
  const fields = filter as Record<string, unknown>;
  const unknownFilter = Object.keys(fields).find(
    (k) => !(FILTER_FIELDS as readonly string[]).includes(k),
  );
  if (unknownFilter !== undefined) {
    throw new RelaybusError(
      "ValidationError",
      `filter: unknown field ${JSON.stringify(unknownFilter)}; a filter takes ${FILTER_FIELDS.join(", ")}`,
    );
  }
  if (Object.keys(fields).length === 0) {
    throw new RelaybusError(
      "ValidationError",
      `filter: give at least one of ${FILTER_FIELDS.join(", ")} (or all: true to select every dead letter)`,
    );
  }
  return { selection: parseSelectionFields(fields, "filter."), mode: parsedMode };
}

const SELECT_HINT = 'select dead letters with "ids": [...], "filter": {...} or "all": true';

function parseIds(ids: unknown): string[] {
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_SELECTED_IDS) {
    throw new RelaybusError(
      "ValidationError",
      `ids: expected an array of 1 to ${MAX_SELECTED_IDS} delivery ids, got ${Array.isArray(ids) ? `${ids.length} ids` : describeJson(ids)}`,
    );
  }
  const bad = ids.findIndex((id) => typeof id !== "string" || id === "");
  if (bad >= 0) {
    throw new RelaybusError(
      "ValidationError",
      `ids[${bad}]: expected a non-empty string, got ${JSON.stringify(ids[bad])}`,
    );
  }
  return [...new Set(ids as string[])];
}

/** What {@link createCurrentTargetPlanner} needs. */
export interface CurrentTargetPlannerDeps {
  log: Pick<LogEngine, "read">;
  registry: Pick<RuleRegistry, "compiledRule">;
  /** Budget of one transform evaluation (`transform.timeoutMs`). */
  transformTimeoutMs: number;
  nowMs: () => number;
  format?: FormatOptions;
}

/**
 * The `prepare` of a `current` redrive: the dead letter's event, read from the log by bus
 * and offset, formatted for the target as the rule now defines it, with the dead letter's
 * id as `webhook-id`. A disabled rule still counts: redriving is the operator's explicit
 * act, and a rule is often switched off while its target is repaired.
 *
 * A dead letter is skipped, with the reason, when its rule or target no longer exists, its
 * event is past retention, or the transform or format fails on it: it stays a dead letter,
 * so nothing is lost, and an `original` redrive can still send it.
 */
export function createCurrentTargetPlanner(
  deps: CurrentTargetPlannerDeps,
): NonNullable<RedriveOptions["prepare"]> {
  const format = deps.format ?? DEFAULT_FORMAT_OPTIONS;
  return async (letter: DeadLetter): Promise<RedrivePlan> => {
    const rule = deps.registry.compiledRule(letter.bus, letter.rule);
    const where = `rule ${JSON.stringify(letter.rule)} of bus ${JSON.stringify(letter.bus)}`;
    if (rule === undefined) return { skip: `${where} no longer exists` };
    const target = rule.targets.find((t) => t.targetId === letter.targetId);
    if (target === undefined)
      return { skip: `target ${JSON.stringify(letter.targetId)} no longer exists in ${where}` };

    // Offsets are never reused, but a bus deleted and created again starts over: the event
    // id tells the event this dead letter came from from a later one at the same offset.
    const [stored] = await deps.log.read(letter.bus, letter.offset - 1, 1);
    if (
      stored === undefined ||
      stored.offset !== letter.offset ||
      stored.event.id !== letter.eventId
    ) {
      return {
        skip: `event ${JSON.stringify(letter.eventId)} (offset ${letter.offset} of bus ${JSON.stringify(letter.bus)}) is no longer in the log`,
      };
    }

    const built = await buildTargetRequest(stored, target, {
      deliveryId: letter.id,
      nowMs: deps.nowMs(),
      transformTimeoutMs: deps.transformTimeoutMs,
      format,
    });
    return built.ok ? { request: built.value, retry: target.retry } : { skip: built.reason };
  };
}

function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

