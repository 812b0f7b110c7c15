/**
 * `relaybus streams` against a real Relaybus: list, show, pause, resume, capacity and dead
 * letters as a newcomer would run them; `relaybus rules check` reports a stream's problem
 * with its file and line.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { runCli } from "../helpers/run-cli.js";
import { startTestService, type TestService } from "../helpers/service.js";

let service: TestService;
let sink: Receiver;

before(async () => {
  sink = await createReceiver();
  sink.always("/no", { status: 422 });
  service = await startTestService({
    rules: {
      "pipes.yaml": `streams:
  - name: to-sink
    source: {bus: {bus: default, startAt: oldest}}
    sink: {webhook: {url: "${sink.url}/no"}}
    capacity: {minCU: 1, maxCU: 2}
`,
    },
  });
  const response = await service.post("/v1/events", { Entries: [{ Source: "cli", DetailType: "t", Detail: "{}" }] });
  assert.equal(response.status, 200);
});

after(async () => {
  await service.close();
  await sink.close();
});

const streams = (...args: string[]) => runCli(["streams", ...args], { RELAYBUS_URL: service.url });

test("cli streams - list, show, dead letters, pause and resume a stream", async () => {
  const deadline = Date.now() + 10_000;
  let dead = await streams("dead-letters", "to-sink");
  while (!dead.stdout.includes("422") && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    dead = await streams("dead-letters", "to-sink");
  }
  assert.equal(dead.code, 0, dead.stderr);
  assert.match(dead.stdout, /ID\s+AT\s+EVENT\s+ATTEMPTS\s+REASON/);
  assert.match(dead.stdout, /the sink refused it: webhook .* answered 422/);

  const list = await streams("list");
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /to-sink\s+running\s+1 \(1-2\)\s+1\s+0\s+0\s+1\s+[\d.]+ s\s+bus → webhook/);

  const show = await streams("show", "to-sink");
  assert.match(show.stdout, /stream to-sink \(.*pipes\.yaml:2\)/);
  assert.match(show.stdout, /events\s+1 in, 0 out, 0 filtered, 1 dead-lettered/);
  assert.match(show.stdout, /live\s+\d+ events\/s, quota 5,000 events\/s/);

  const paused = await streams("pause", "to-sink");
  assert.equal(paused.stdout.trim(), "stream to-sink: paused");
  const resumed = await streams("resume", "to-sink");
  assert.equal(resumed.stdout.trim(), "stream to-sink: running");

  const capacity = await streams("capacity", "to-sink");
  assert.equal(capacity.stdout.trim(), "to-sink: 1 CU now");

  const redriven = await streams("redrive", "to-sink", "--all");
  assert.equal(redriven.code, 0, redriven.stderr);
  assert.equal(redriven.stdout.trim(), "1 dead letter(s) sent again, 1 dead-lettered again", "the sink still answers 422");
  const purged = await streams("purge", "to-sink", "--all");
  assert.equal(purged.stdout.trim(), "1 dead letter(s) deleted");
  assert.equal((await streams("dead-letters", "to-sink")).stdout.trim(), "no dead letters");
  const neither = await streams("purge", "to-sink");
  assert.equal(neither.code, 1);
  assert.match(neither.stderr, /give dead letter ids, or --all/);

  const missing = await streams("show", "nope");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /StreamNotFound: stream "nope" does not exist/);
});

test("cli streams - rules check reports a stream's problem with file and line", async () => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-rules-check-"));
  try {
    writeFileSync(
      join(dir, "bad.yaml"),
      `streams:
  - name: ok
    source: {bus: {bus: default}}
    sink: {webhook: {url: "http://127.0.0.1:9/"}}
  - name: bad
    source: {bus: {bus: default}}
    sink: {webhook: {url: "http://127.0.0.1:9/"}}
    capacity: {minCU: 3, maxCU: 2}
`,
    );
    const check = await runCli(["rules", "check", dir]);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /bad\.yaml:8: \/streams\/1\/capacity\/maxCU: must be at least minCU \(3\), got 2/);
    writeFileSync(join(dir, "bad.yaml"), "streams:\n  - name: ok\n    source: {bus: {bus: default}}\n    sink: {webhook: {url: 'http://127.0.0.1:9/'}}\n");
    const fixed = await runCli(["rules", "check", dir]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, /1 file\(s\), 0 rule\(s\), 1 stream\(s\): OK/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
