/**
 * Table and column names as the config gives them, turned into safely quoted SQL. Names are
 * written as in SQL: a bare name (`orders`, folded to lower case as PostgreSQL folds it) or a
 * double-quoted one (`"Orders"`, kept exactly, `""` for a quote), and a table may carry its
 * schema (`sales.orders`). The config schema admits only that shape, and every name is
 * re-quoted on output, so no config string ever reaches SQL unquoted.
 */
import { escapeIdentifier } from "pg";

/** One name: bare (PostgreSQL's unquoted identifier rule, ASCII) or double-quoted. */
const NAME = String.raw`(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"\u0000]|"")+")`;

/** JSON Schema pattern of a column name. */
export const COLUMN_NAME_PATTERN = `^${NAME}$`;

/** JSON Schema pattern of a table name, optionally schema-qualified. */
export const TABLE_NAME_PATTERN = `^${NAME}(?:\\.${NAME})?$`;

const NAME_PART = /(?:^|\.)(?:([A-Za-z_][A-Za-z0-9_$]*)|"((?:[^"]|"")+)")/g;

/**
 * The quoted SQL form of a name that matched {@link TABLE_NAME_PATTERN} or
 * {@link COLUMN_NAME_PATTERN}: `Sales."Big Orders"` becomes `"sales"."Big Orders"`.
 */
export function quoteName(name: string): string {
  const parts: string[] = [];
  for (const match of name.matchAll(NAME_PART)) {
    const bare = match[1];
    parts.push(bare !== undefined ? bare.toLowerCase() : (match[2] ?? "").replaceAll('""', '"'));
  }
  return parts.map((part) => escapeIdentifier(part)).join(".");
}
