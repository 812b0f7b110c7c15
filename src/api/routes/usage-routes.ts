/**
 * Usage: `GET /v1/usage?from&to&groupBy&granularity&format`.
 *
 * Rows per hour (`granularity=hour`, from the hourly counts) or per day (`day`, from the
 * daily rollup), grouped by any of bus, rule, target, stream and meter, with totals per
 * meter. JSON by default; CSV with `format=csv` or `Accept: text/csv`. Before answering,
 * the meters are brought up to date (the publish meter reads to the end of the log and the
 * rollup runs), so a report shows what was published up to the request.
 */
import { Router, type Request } from "express";
import { RelaybusError } from "../../errors.js";
import {
  DAY_MS,
  HOUR_MS,
  USAGE_DIMENSIONS,
  USAGE_GRANULARITIES,
  type UsageDimension,
  type UsageGranularity,
  type UsageRow,
} from "../../log/usage-store.js";
import { usageCsv } from "../../metering/usage-csv.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed, queryParam } from "../request-params.js";

/** Most rows one report answers; past it the request fails with `UsageReportTooLarge`. */
export const MAX_USAGE_ROWS = 10_000;

/** The report's range when `from` is absent: the last day by hour, the last 30 days by day. */
const DEFAULT_SPAN_MS: Record<UsageGranularity, number> = { hour: DAY_MS, day: 30 * DAY_MS };

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export function createUsageRouter(deps: ControlPlaneDeps): Router {
  const { storage } = deps;
  const router = Router();

  router
    .route("/v1/usage")
    .get(async (req, res) => {
      const granularity = parseGranularity(queryParam(req, "granularity"));
      const groupBy = parseGroupBy(queryParam(req, "groupBy"));
      const csv = wantsCsv(req);
      const bucketMs = granularity === "day" ? DAY_MS : HOUR_MS;
      const toText = queryParam(req, "to");
      const toMs = toText === undefined ? Date.now() : parseTime(toText, "to");
      const fromText = queryParam(req, "from");
      const requestedFromMs =
        fromText === undefined ? toMs - DEFAULT_SPAN_MS[granularity] : parseTime(fromText, "from");
      if (requestedFromMs >= toMs) {
        throw new RelaybusError(
          "ValidationError",
          `from: must be before to (from ${new Date(requestedFromMs).toISOString()}, to ${new Date(toMs).toISOString()})`,
          { details: { field: "from" } },
        );
      }
      const fromMs = Math.floor(requestedFromMs / bucketMs) * bucketMs;

      await deps.syncUsage?.();
      const report = storage.usage.query({ fromMs, toMs, groupBy, granularity, limit: MAX_USAGE_ROWS });
      if (report.truncated) {
        throw new RelaybusError(
          "UsageReportTooLarge",
          `the report has more than ${MAX_USAGE_ROWS} rows; narrow from and to, group by fewer of ${USAGE_DIMENSIONS.join(", ")}, or use granularity=day`,
          { details: { maxRows: MAX_USAGE_ROWS } },
        );
      }
      if (csv) {
        res
          .type("text/csv; charset=utf-8")
          .setHeader("content-disposition", `attachment; filename="usage-${granularity}.csv"`)
          .send(usageCsv(report.rows, groupBy));
        return;
      }
      res.json({
        from: new Date(fromMs).toISOString(),
        to: new Date(toMs).toISOString(),
        granularity,
        groupBy,
        rows: report.rows.map(toRowView),
        totals: report.totals,
      });
    })
    .all(methodNotAllowed(["GET"]));

  return router;
}

function toRowView(row: UsageRow): Record<string, unknown> {
  const { startMs, ...rest } = row;
  return { start: new Date(startMs).toISOString(), ...rest };
}

function parseGranularity(text: string | undefined): UsageGranularity {
  if (text === undefined) return "hour";
  if ((USAGE_GRANULARITIES as readonly string[]).includes(text)) return text as UsageGranularity;
  throw new RelaybusError(
    "ValidationError",
    `granularity: expected ${USAGE_GRANULARITIES.join(" or ")}, got ${JSON.stringify(text)}`,
    { details: { field: "granularity" } },
  );
}

/** A comma-separated list of dimensions, in the report's fixed order; default `meter`; empty: by time only. */
function parseGroupBy(text: string | undefined): UsageDimension[] {
  if (text === undefined) return ["meter"];
  const asked = text.split(",").map((part) => part.trim()).filter((part) => part !== "");
  for (const part of asked) {
    if (!(USAGE_DIMENSIONS as readonly string[]).includes(part)) {
      throw new RelaybusError(
        "ValidationError",
        `groupBy: ${JSON.stringify(part)} is not a dimension; use a comma-separated list of ${USAGE_DIMENSIONS.join(", ")}`,
        { details: { field: "groupBy" } },
      );
    }
  }
  return USAGE_DIMENSIONS.filter((d) => asked.includes(d));
}

/** A date (`2025-01-31`, UTC midnight) or an RFC 3339 date-time, as ms since the epoch. */
function parseTime(text: string, field: string): number {
  const ms = DATE.test(text) || DATE_TIME.test(text) ? Date.parse(DATE.test(text) ? `${text}T00:00:00Z` : text) : NaN;
  if (!Number.isFinite(ms)) {
    throw new RelaybusError(
      "ValidationError",
      `${field}: expected a date (2025-01-31) or an RFC 3339 time (2025-01-31T10:00:00Z), got ${JSON.stringify(text)}`,
      { details: { field } },
    );
  }
  return ms;
}

/** `?format=csv|json` wins; without it, CSV when Accept prefers text/csv to JSON. */
function wantsCsv(req: Request): boolean {
  const format = queryParam(req, "format");
  if (format !== undefined) {
    if (format === "csv") return true;
    if (format === "json") return false;
    throw new RelaybusError("ValidationError", `format: expected json or csv, got ${JSON.stringify(format)}`, {
      details: { field: "format" },
    });
  }
  return req.accepts(["application/json", "text/csv"]) === "text/csv";
}
