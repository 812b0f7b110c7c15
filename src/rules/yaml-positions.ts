/**
 * From JSON pointers to lines of a YAML document, and back from offsets to pointers: rule
 * problems are found on the plain JS value, but reported where the author can find them.
 */
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type Document,
  type LineCounter,
  type Node,
} from "yaml";
import { fromPointer, toPointer } from "./rule-problem.js";

/**
 * The 1-based line of what `pointer` names: the key's line for an object member, the item's
 * line for an array element. When the pointer goes past what the document holds (a missing
 * key), the line of the deepest part that exists.
 */
export function lineOfPointer(doc: Document, lineCounter: LineCounter, pointer: string): number {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? 0;
  for (const segment of fromPointer(pointer)) {
    node = resolveAlias(doc, node);
    if (isMap(node)) {
      const pair = node.items.find((item) => keyText(item.key) === segment);
      if (pair === undefined) break;
      offset = startOf(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const item: unknown = node.items[Number(segment)];
      if (item === undefined || !/^\d+$/.test(segment)) break;
      offset = startOf(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return lineCounter.linePos(offset).line;
}

/** The JSON pointer of the deepest node whose source range holds `offset` (`""` if none). */
export function pointerAtOffset(doc: Document, offset: number): string {
  const path: (string | number)[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && contains(item.key, item.value, offset),
      );
      if (pair === undefined) break;
      path.push(keyText(pair.key));
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => contains(item, item, offset));
      if (index < 0) break;
      path.push(index);
      node = node.items[index];
    } else {
      break;
    }
  }
  return toPointer(path);
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function resolveAlias(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function startOf(node: unknown): number | undefined {
  return (node as Node | null)?.range?.[0];
}

/** True when `offset` lies between the start of `first` and the end of `last`. */
function contains(first: unknown, last: unknown, offset: number): boolean {
  const start = startOf(first);
  const end = (last as Node | null)?.range?.[2] ?? (first as Node | null)?.range?.[2];
  return start !== undefined && end !== undefined && start <= offset && offset <= end;
}
