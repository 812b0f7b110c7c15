/**
 * Escaping for the HTML report. Every string of the data (bus, rule, target, stream and
 * tenant names, meters, dates) goes through it before it meets HTML, in text and in
 * attribute values (always double-quoted) alike.
 */

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** `text` with `& < > " '` replaced by their entities: safe as element text and as a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}
