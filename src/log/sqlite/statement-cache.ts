/**
 * Prepared statements by their SQL text, each made on first use: for stores whose queries are
 * built from the filters a caller gives (a few shapes, each run many times), so that a query
 * is prepared once per shape, not once per call.
 */
import type Database from "better-sqlite3";

/** A function that prepares `sql` on its first call and returns that same statement after. */
export type PreparedBySql = <Row>(sql: string) => Database.Statement<unknown[], Row>;

/** A statement cache over `db`. The SQL texts come from code, so their number is bounded. */
export function statementCache(db: Database.Database): PreparedBySql {
  const statements = new Map<string, Database.Statement<unknown[], unknown>>();
  return <Row>(sql: string) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare<unknown[], unknown>(sql);
      statements.set(sql, statement);
    }
    return statement as Database.Statement<unknown[], Row>;
  };
}
