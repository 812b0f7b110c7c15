/**
 * `relaybus receive`: a small webhook receiver that prints every request it gets, for trying
 * Relaybus out (the README's first example) and for looking at what a target would see.
 */
import { indent } from "./text-format.js";
import type { Command } from "commander";
import { createServer } from "node:http";

interface ReceiveFlags {
  port: string;
  host: string;
  status: string;
}

/** Headers worth showing: CloudEvents attributes, Standard Webhooks headers, the content type. */
const SHOWN_HEADER = /^(ce-|webhook-|content-type$)/;

export function registerReceiveCommand(program: Command): void {
  program
    .command("receive")
    .description("run a webhook receiver that prints what arrives")
    .option("-p, --port <n>", "port to listen on", "9000")
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--status <code>", "HTTP status to answer with", "200")
    .action(async (flags: ReceiveFlags) => {
      const status = Number(flags.status);
      let count = 0;
      const server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          count += 1;
          const lines = [`#${count} ${new Date().toISOString()} ${req.method} ${req.url}`];
          for (const [name, value] of Object.entries(req.headers)) {
            if (SHOWN_HEADER.test(name)) lines.push(`  ${name}: ${String(value)}`);
          }
          lines.push(indent(pretty(Buffer.concat(chunks).toString("utf8"))));
          console.log(lines.join("\n"));
          res.writeHead(status, { "content-type": "text/plain" }).end("ok\n");
        });
      });
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(Number(flags.port), flags.host, () => resolve());
      });
      console.log(
        `receiving on http://${flags.host}:${flags.port}/ (answering ${status}); Ctrl-C stops`,
      );
      process.on("SIGINT", () => server.close(() => process.exit(0)));
      process.on("SIGTERM", () => server.close(() => process.exit(0)));
    });
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
