/**
 * Billing periods and their records.
 *
 * - `GET /v1/billing/periods`: closed periods, the current one and ended ones not closed
 *   yet (those two with a preview total), newest first.
 * - `GET /v1/billing/periods/{period}/records`: line items, totals per meter, bus, stream,
 *   tenant and resource, and the daily usage per meter; `?format=csv` or
 *   `Accept: text/csv` for the line items as CSV.
 * - `POST /v1/billing/periods/{period}:close`: closes an ended period now.
 */
import { Router, type Request } from "express";
import { RelaybusError } from "../../errors.js";
import { billingCsv } from "../../metering/billing-csv.js";
import { toPeriodView, toStatementView } from "../../metering/billing-view.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed, queryParam } from "../request-params.js";

/**
 * The route; `\\:` is a literal colon (express 5). Typed as a plain string because
 * express's type-level path parser does not know that escape.
 */
const CLOSE_PATH: string = "/v1/billing/periods/:period\\:close";

export function createBillingRouter(deps: ControlPlaneDeps): Router {
  const { billing } = deps;
  const router = Router();

  router
    .route("/v1/billing/periods")
    .get(async (_req, res) => {
      res.json({ periods: (await billing.list()).map(toPeriodView) });
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route(CLOSE_PATH)
    .post(async (req, res) => {
      const { period } = req.params as { period: string };
      const result = await billing.close(period);
      const view = toPeriodView({ ...result.period, preview: false });
      // Closing a closed period changes nothing: no entry.
      if (result.closed) deps.audit.record(req, { action: "billing.period.close", resource: `billing/periods/${period}`, after: view });
      res.json({ closed: result.closed, period: view });
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/v1/billing/periods/:period/records")
    .get(async (req, res) => {
      const csv = wantsCsv(req);
      const statement = await billing.statement(req.params.period);
      if (!csv) {
        res.json(toStatementView(statement));
        return;
      }
      res
        .type("text/csv; charset=utf-8")
        .setHeader("content-disposition", `attachment; filename="billing-${statement.period}.csv"`)
        .send(billingCsv(statement));
    })
    .all(methodNotAllowed(["GET"]));

  return router;
}

/** `?format=csv|json` wins; without it, CSV when Accept prefers text/csv to JSON. */
function wantsCsv(req: Request): boolean {
  const format = queryParam(req, "format");
  if (format !== undefined) {
    if (format === "csv") return true;
    if (format === "json") return false;
    throw new RelaybusError(
      "ValidationError",
      `format: expected csv or json, got ${JSON.stringify(format)}`,
    );
  }
  return req.accepts(["application/json", "text/csv"]) === "text/csv";
}
