/**
 * The file sink against the real file system: what the lines hold, mending a torn line,
 * rotation, the order of concurrent writes, and how real failures are classified.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { SinkError } from "../../connectors/index.js";
import { fileSink, type FileSinkConfig } from "../../connectors/file/index.js";
import { readJsonLines } from "../conformance/harnesses/file.js";
import type { CloudEvent } from "../../src/types.js";
import { sinkContext, testEvents } from "../helpers/connector-runs.js";

const context = sinkContext({ streamName: "file-test" });

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, {
    source: "file-test",
    type: "file.test",
    data: (i) => ({ i, text: "line\nbreak é" }),
  });
}

function tempDir(t: TestContext): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "relaybus-file-test-")));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sinkFor(config: FileSinkConfig) {
  return fileSink.create(config, context);
}

async function refusal(write: Promise<void>): Promise<SinkError> {
  const error = await write.then(
    () => assert.fail("the write succeeded"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof SinkError, `a SinkError, got ${String(error)}`);
  return error;
}

test("file sink - creates missing directories and appends one JSON line per event", async (t) => {
  const path = join(tempDir(t), "a", "b", "events.jsonl");
  const sink = sinkFor({ path });
  await sink.write(events(2, "one"));
  await sink.write(events(1, "two"));
  const text = readFileSync(path, "utf8");
  assert.ok(text.endsWith("\n"));
  const lines = text.split("\n").slice(0, -1);
  assert.equal(lines.length, 3, "a newline inside data stays escaped in its line");
  assert.deepEqual(JSON.parse(lines[0] as string), events(2, "one")[0]);
  assert.deepEqual(
    readJsonLines(path).map((e) => e.id),
    ["one-0", "one-1", "two-0"],
  );
  await sink.close();
});

test("file sink - format data writes only each event's data", async (t) => {
  const path = join(tempDir(t), "data.jsonl");
  const sink = sinkFor({ path, format: "data", fsync: false });
  const base = { specversion: "1.0", source: "s", type: "t" } as const;
  await sink.write([
    { ...base, id: "1", data: { total: 3 } },
    { ...base, id: "2", data_base64: "AAEC" },
    { ...base, id: "3" },
  ]);
  assert.equal(readFileSync(path, "utf8"), '{"total":3}\n"AAEC"\nnull\n');
});

test("file sink - a torn last line is ended before the next batch, so each batch starts on a line of its own", async (t) => {
  const path = join(tempDir(t), "torn.jsonl");
  writeFileSync(path, `${JSON.stringify(events(1, "whole")[0])}\n{"specversion":"1.0","id":"half`);
  const sink = sinkFor({ path });
  await sink.write(events(2, "after"));
  const lines = readFileSync(path, "utf8").split("\n");
  assert.equal(lines[1], '{"specversion":"1.0","id":"half', "the torn line stands alone");
  assert.deepEqual(
    readJsonLines(path).map((e) => e.id),
    ["whole-0", "after-0", "after-1"],
  );
});

test("file sink - rotates to path.1, path.2 (oldest first) before the file would pass maxFileBytes", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "rotating.jsonl");
  const lineBytes = Buffer.byteLength(`${JSON.stringify(events(1, "r0")[0])}\n`);
  const sink = sinkFor({ path, maxFileBytes: lineBytes * 2 });
  for (let i = 0; i < 5; i++) await sink.write(events(1, `r${i}`));
  assert.deepEqual(readdirSync(dir).sort(), [
    "rotating.jsonl",
    "rotating.jsonl.1",
    "rotating.jsonl.2",
  ]);
  const ids = (name: string) => readJsonLines(join(dir, name)).map((e) => e.id);
  assert.deepEqual(ids("rotating.jsonl.1"), ["r0-0", "r1-0"]);
  assert.deepEqual(ids("rotating.jsonl.2"), ["r2-0", "r3-0"]);
  assert.deepEqual(ids("rotating.jsonl"), ["r4-0"]);
  // A batch larger than the limit is not split: it fills a file of its own.
  await sink.write(events(3, "big"));
  assert.deepEqual(ids("rotating.jsonl"), ["big-0", "big-1", "big-2"]);
  assert.deepEqual(ids("rotating.jsonl.3"), ["r4-0"]);
});

test("file sink - writes called together land in call order", async (t) => {
  const path = join(tempDir(t), "order.jsonl");
  const sink = sinkFor({ path });
  await Promise.all(Array.from({ length: 10 }, (_, i) => sink.write(events(3, `w${i}`))));
  const expected = Array.from({ length: 10 }, (_, i) => events(3, `w${i}`).map((e) => e.id)).flat();
  assert.deepEqual(
    readJsonLines(path).map((e) => e.id),
    expected,
  );
});

test("file sink - a directory at the path or a file in the way fails for good", async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, "is-a-dir"));
  const isDir = await refusal(sinkFor({ path: join(dir, "is-a-dir") }).write(events(1, "d")));
  assert.equal(isDir.retryable, false);
  assert.match(isDir.message, /EISDIR/);
  writeFileSync(join(dir, "plain"), "");
  const notDir = await refusal(
    sinkFor({ path: join(dir, "plain", "events.jsonl") }).write(events(1, "n")),
  );
  assert.equal(notDir.retryable, false);
  assert.match(notDir.message, /ENOTDIR/);
});

test("file sink - a full disk fails for now (retryable)", async (t) => {
  const path = join(tempDir(t), "full.jsonl");
  symlinkSync("/dev/full", path);
  const full = await refusal(sinkFor({ path }).write(events(1, "f")));
  assert.equal(full.retryable, true);
  assert.match(full.message, /ENOSPC/);
});

test("file sink - a pipe takes lines without fsync, and with fsync fails for good naming the fix", async (t) => {
  if (spawnSync("mkfifo", ["--version"]).status !== 0) return t.skip("no mkfifo");
  const path = join(tempDir(t), "pipe");
  assert.equal(spawnSync("mkfifo", [path]).status, 0);
  const reader = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  t.after(() => closeSync(reader));
  await sinkFor({ path, fsync: false }).write(events(1, "p"));
  const buffer = Buffer.alloc(4_096);
  const read = readSync(reader, buffer);
  assert.equal(buffer.subarray(0, read).toString("utf8"), `${JSON.stringify(events(1, "p")[0])}\n`);
  const unsyncable = await refusal(sinkFor({ path }).write(events(1, "q")));
  assert.equal(unsyncable.retryable, false);
  assert.match(unsyncable.message, /fsync: false/);
});
