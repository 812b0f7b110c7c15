/**
 * `relaybus rules check [DIR]`: validates rule files and prints `file:line: pointer: message`
 * for each problem. Exit status 1 when any problem is found.
 */
import type { Command } from "commander";
import { loadConfig } from "../config/load-config.js";
import { CONNECTORS } from "../../connectors/index.js";
import { checkRuleFiles, formatRuleProblem } from "../rules/load-rule-files.js";
import { createStreamFileSection } from "../streams/stream-file-section.js";

export function registerRulesCommand(program: Command): void {
  const rules = program.command("rules").description("work with rule files");
  rules
    .command("check")
    .description("validate the rule files of a directory (default: the configured rules dir)")
    .argument("[dir]", "directory of rule files")
    .action(async (dir: string | undefined) => {
      const config = loadConfig({});
      // Streams are checked as the server checks them (connectors' configs included); whether a
      // name is taken by an API stream is the server's to say.
      const streams = createStreamFileSection({ config, connectors: CONNECTORS });
      const result = await checkRuleFiles(dir ?? config.rulesDir, config, [streams]);
      for (const problem of result.problems) console.log(formatRuleProblem(problem));
      const streamCount = streams.current().length;
      const summary = `${result.files} file(s), ${result.rules} rule(s)${streamCount > 0 ? `, ${streamCount} stream(s)` : ""}`;
      if (result.problems.length > 0) {
        console.log(`${summary}: ${result.problems.length} problem(s)`);
        process.exitCode = 1;
      } else {
        console.log(`${summary}: OK`);
      }
    });
}
