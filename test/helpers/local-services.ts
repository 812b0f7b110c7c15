/**
 * The servers this machine runs on loopback (PostgreSQL, Redis, RabbitMQ, Mosquitto, NATS),
 * for the tests that need one. `requireService` checks that the server answers and starts it
 * with the machine's own command when it does not; it returns the reason to skip when the
 * server still cannot be reached, so that a machine without it skips those tests, saying why.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { connect } from "node:net";

export const LOCAL_SERVICES = {
  postgres: { port: 5432, url: "postgres://postgres@127.0.0.1:5432/test" },
  redis: { port: 6379, url: "redis://127.0.0.1:6379" },
  rabbitmq: { port: 5672, url: "amqp://guest:guest@127.0.0.1:5672" },
  mqtt: { port: 1883, url: "mqtt://127.0.0.1:1883" },
  nats: { port: 4222, url: "nats://127.0.0.1:4222" },
} as const;
export type LocalService = keyof typeof LOCAL_SERVICES;

/** How each server is started on this kind of machine when it is not running. */
function startCommand(service: LocalService): { command: string; args: string[] } | undefined {
  switch (service) {
    case "postgres": {
      const versions = existsSync("/etc/postgresql") ? readdirSync("/etc/postgresql") : [];
      const version = versions[0];
      return version === undefined
        ? undefined
        : { command: "pg_ctlcluster", args: ["--skip-systemctl-redirect", version, "main", "start"] };
    }
    case "redis":
      return {
        command: "redis-server",
        args: ["--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "", "--appendonly", "no"],
      };
    case "rabbitmq":
      return { command: "rabbitmq-server", args: ["-detached"] };
    case "mqtt":
      return { command: "mosquitto", args: ["-d", "-c", "/etc/mosquitto/mosquitto.conf"] };
    case "nats":
      return {
        command: "start-stop-daemon",
        args: ["--start", "--oknodo", "--background", "--exec", "/usr/sbin/nats-server", "--",
          "-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server"],
      };
  }
}

function reachable(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

const checked = new Map<LocalService, Promise<string | undefined>>();

/**
 * Undefined when the server answers on its port (starting it first if it did not);
 * otherwise the reason the tests that need it are skipped.
 */
export function requireService(service: LocalService): Promise<string | undefined> {
  let result = checked.get(service);
  if (result === undefined) {
    result = ensure(service);
    checked.set(service, result);
  }
  return result;
}

async function ensure(service: LocalService): Promise<string | undefined> {
  const { port } = LOCAL_SERVICES[service];
  if (await reachable(port)) return undefined;
  const start = startCommand(service);
  if (start !== undefined) spawnSync(start.command, start.args, { stdio: "ignore", timeout: 30_000 });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await reachable(port)) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return `${service} is not reachable on 127.0.0.1:${port} and could not be started`;
}
