/**
 * `relaybus pattern test`: applies an event pattern to an event, exactly as given (AWS
 * `TestEventPattern` semantics). Exit status: 0 match, 1 no match, 2 invalid pattern or input.
 * With `--explain`, it also prints why: per alternative, the leaf each field picked, or the
 * fields that failed and how (see src/patterns/explain-pattern.ts).
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { isRelaybusError } from "../errors.js";
import { compileEventPattern } from "../patterns/compile-pattern.js";
import { explainEventPattern, formatPatternExplanation } from "../patterns/explain-pattern.js";
import { parseEventPattern } from "../patterns/parse-pattern.js";

export function registerPatternCommand(program: Command): void {
  const pattern = program.command("pattern").description("work with EventBridge event patterns");
  pattern
    .command("test")
    .description("test whether an event matches a pattern")
    .requiredOption("--pattern <file|json>", "the pattern: a file, or inline JSON")
    .requiredOption("--event <file|json>", "the event: a file, or inline JSON")
    .option("--explain", "say why: the value each field picked, or which field failed and how")
    .action((flags: { pattern: string; event: string; explain?: boolean }) => {
      try {
        const parsed = parseEventPattern(readJsonArgument(flags.pattern, "--pattern"));
        const event = readJsonArgument(flags.event, "--event");
        const match = compileEventPattern(parsed).matches(event);
        if (flags.explain === true) {
          // Its first line is its own verdict ("match" or "no match"), which always agrees
          // with the compiled matcher's; the exit status stays the matcher's.
          console.log(formatPatternExplanation(explainEventPattern(parsed, event)));
        } else {
          console.log(match ? "match" : "no match");
        }
        process.exitCode = match ? 0 : 1;
      } catch (error) {
        console.error(isRelaybusError(error) ? `${error.code}: ${error.message}` : String(error));
        process.exitCode = 2;
      }
    });
}

/** Inline JSON when the argument starts like JSON, else the path of a JSON file. */
function readJsonArgument(argument: string, flag: string): unknown {
  const trimmed = argument.trimStart();
  const text =
    trimmed.startsWith("{") || trimmed.startsWith("[") ? argument : readFileSync(argument, "utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${flag}: not valid JSON: ${(error as Error).message}`);
  }
}
