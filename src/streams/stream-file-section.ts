/**
 * The `streams:` sections of rule files: checked with every load of the files (a problem
 * refuses the whole load, and the running streams stay), applied only with an accepted load.
 * Names are unique across all files; the manager checks them against the API's streams.
 */
import type { ConnectorDefinition } from "../../connectors/index.js";
import type { RelaybusConfig } from "../config/defaults.js";
import type { FileSection, FileSectionOwner } from "../rules/load-rule-files.js";
import type { RuleProblem } from "../rules/rule-problem.js";
import { checkStream, type CompiledStream } from "./compile-stream.js";

export interface StreamFileSectionDeps {
  config: Pick<RelaybusConfig, "limits" | "delivery" | "streams">;
  connectors: readonly ConnectorDefinition[];
  /** Whether an API stream has this name (a file may not take it). Absent: not checked. */
  apiStreamExists?(name: string): boolean;
  /** How many API streams there are, counted against `limits.maxStreams`. Absent: none. */
  apiStreamCount?(): number;
  /** Told the file streams of every accepted load. */
  onApply?(streams: readonly CompiledStream[]): void;
}

/** The owner of `streams:`; `current()` is the file streams of the last accepted load. */
export function createStreamFileSection(deps: StreamFileSectionDeps): FileSectionOwner & {
  current(): readonly CompiledStream[];
} {
  let current: readonly CompiledStream[] = [];
  return {
    key: "streams",
    current: () => current,
    check(sections: readonly FileSection[]) {
      const problems: RuleProblem[] = [];
      const compiled: CompiledStream[] = [];
      const definedAt = new Map<string, string>();
      for (const section of sections) {
        (section.value as unknown[]).forEach((entry, index) => {
          const line = section.lineOf(`/${index}`);
          const at = (pointer: string, message: string): RuleProblem => ({
            file: section.file,
            line: section.lineOf(`/${index}${pointer}`),
            pointer: `/streams/${index}${pointer}`,
            message,
          });
          const { stream, problems: found } = checkStream(entry, {
            config: deps.config,
            connectors: deps.connectors,
            origin: { kind: "file", file: section.file, line },
          });
          problems.push(...found.map((p) => at(p.pointer, p.message)));
          if (stream === undefined) return;
          const first = definedAt.get(stream.name);
          if (first !== undefined) {
            problems.push(at("/name", `stream ${JSON.stringify(stream.name)} is already defined at ${first}; stream names are unique`));
            return;
          }
          if (deps.apiStreamExists?.(stream.name) === true) {
            problems.push(
              at("/name", `stream ${JSON.stringify(stream.name)} exists through the API; delete it there (DELETE /v1/streams/${stream.name}) or rename this one`),
            );
            return;
          }
          definedAt.set(stream.name, `${section.file}:${line}`);
          compiled.push(stream);
        });
      }
      const apiCount = deps.apiStreamCount?.() ?? 0;
      if (compiled.length + apiCount > deps.config.limits.maxStreams) {
        const last = sections[sections.length - 1]!;
        problems.push({
          file: last.file,
          line: last.lineOf(""),
          pointer: "/streams",
          message: `${compiled.length} streams in the rule files and ${apiCount} through the API are more than limits.maxStreams (${deps.config.limits.maxStreams})`,
        });
      }
      return {
        problems,
        apply() {
          current = compiled;
          deps.onApply?.(compiled);
        },
      };
    },
  };
}
