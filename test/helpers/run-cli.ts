/**
 * Runs the real `relaybus` command (from the sources, through tsx) as a child process, the
 * way a user runs it, and collects what it printed and its exit status.
 */
import { execFile } from "node:child_process";

/** The command's entry in the sources. */
export const CLI_ENTRY = new URL("../../src/cli/run.ts", import.meta.url).pathname;

/** How a run of the command ended. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `relaybus ...args` with `env` added to this process's environment; a variable given
 * as undefined is removed (`RELAYBUS_API_KEY: undefined`, say). Times out after 30 s.
 */
export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[name];
    else childEnv[name] = value;
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", CLI_ENTRY, ...args],
      { env: childEnv, encoding: "utf8", timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
