/**
 * Prints the largest allocation stacks of a sampled heap profile (`.heapprofile`, as
 * `bench/promoted-allocations.mjs` writes it): by function, then by the stack of the last
 * five frames, in MB and share of the sampled bytes.
 *
 *     npx tsx bench/promoted-report.ts FILE [--top 25]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children?: ProfileNode[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" } } });
const file = positionals[0];
if (file === undefined) {
  console.error("usage: npx tsx bench/promoted-report.ts FILE [--top 25]");
  process.exit(2);
}
const top = Number(values.top);
const { head } = JSON.parse(readFileSync(file, "utf8")) as { head: ProfileNode };

const frameName = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName === "" ? "(anonymous)" : functionName} ${url.split("/").pop() ?? ""}:${lineNumber + 1}`;
};

const byFunction = new Map<string, number>();
const byStack = new Map<string, number>();
let total = 0;
const walk = (node: ProfileNode, stack: string[]): void => {
  const frames = [...stack, frameName(node)];
  if (node.selfSize > 0) {
    total += node.selfSize;
    const name = frames[frames.length - 1]!;
    byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
    const key = frames.slice(-5).reverse().join(" < ");
    byStack.set(key, (byStack.get(key) ?? 0) + node.selfSize);
  }
  for (const child of node.children ?? []) walk(child, frames);
};
walk(head, []);

const print = (title: string, sizes: Map<string, number>): void => {
  console.log(`\n${title}`);
  for (const [name, bytes] of [...sizes].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(bytes / 1e6).toFixed(1).padStart(8)} MB ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
};
console.log(`sampled: ${(total / 1e6).toFixed(1)} MB`);
print("by function", byFunction);
print("by stack (allocating frame first)", byStack);
