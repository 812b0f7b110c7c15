/**
 * The `relaybus` command. Each sub-command lives in its own file and registers itself here.
 */
import { Command } from "commander";
import { RELAYBUS_VERSION } from "../version.js";
import { registerAuditCommand } from "./audit-command.js";
import { registerBillingCommand } from "./billing-command.js";
import { registerDevClusterCommand } from "./dev-cluster-command.js";
import { registerDlqCommand } from "./dlq-command.js";
import { registerKeysCommand } from "./keys-command.js";
import { registerPatternCommand } from "./pattern-command.js";
import { registerPutCommand } from "./put-command.js";
import { registerReceiveCommand } from "./receive-command.js";
import { registerReplayCommand } from "./replay-command.js";
import { registerRulesCommand } from "./rules-command.js";
import { registerServeCommand } from "./serve-command.js";
import { registerStreamsCommand } from "./streams-command.js";
import { registerTraceCommand } from "./trace-command.js";
import { registerUsageCommand } from "./usage-command.js";

/** Runs the CLI with `argv` (without node and the script path). */
export async function runCli(argv: string[]): Promise<void> {
  const program = new Command("relaybus")
    .description("Relaybus: an event bus you run yourself")
    .version(RELAYBUS_VERSION)
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  registerServeCommand(program);
  registerPutCommand(program);
  registerRulesCommand(program);
  registerPatternCommand(program);
  registerReceiveCommand(program);
  registerDlqCommand(program);
  registerReplayCommand(program);
  registerTraceCommand(program);
  registerUsageCommand(program);
  registerBillingCommand(program);
  registerStreamsCommand(program);
  registerKeysCommand(program);
  registerAuditCommand(program);
  registerDevClusterCommand(program);
  await program.parseAsync(argv, { from: "user" });
}
