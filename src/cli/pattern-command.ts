/**
 * `relaybus pattern test`: applies an event pattern to an event, exactly as given (AWS
 * `TestEventPattern` semantics). Exit status: 0 match, 1 no match, 2 invalid pattern or input.
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { isRelaybusError } from "../errors.js";
import { compileEventPattern } from "../patterns/compile-pattern.js";
import { parseEventPattern } from "../patterns/parse-pattern.js";

export function registerPatternCommand(program: Command): void {
  const pattern = program.command("pattern").description("work with EventBridge event patterns");
  pattern
    .command("test")
    .description("test whether an event matches a pattern")
    .requiredOption("--pattern <file|json>", "the pattern: a file, or inline JSON")
    .requiredOption("--event <file|json>", "the event: a file, or inline JSON")
    .action((flags: { pattern: string; event: string }) => {
      try {
        const parsed = parseEventPattern(readJsonArgument(flags.pattern, "--pattern"));
        const event = readJsonArgument(flags.event, "--event");
        const match = compileEventPattern(parsed).matches(event);
        console.log(match ? "match" : "no match");
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
  const text = trimmed.startsWith("{") || trimmed.startsWith("[") ? argument : readFileSync(argument, "utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${flag}: not valid JSON: ${(error as Error).message}`);
  }
}
