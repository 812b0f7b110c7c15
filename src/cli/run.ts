/**
 * Process entry of the `relaybus` command: runs the CLI with the process's arguments.
 * bin/relaybus.js loads the compiled copy; tests and benchmarks run this file through tsx.
 */
import { runCli } from "./main.js";

runCli(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
