/** How connector tests check that a sink refused a write. */
import assert from "node:assert/strict";
import { SinkError } from "../../connectors/index.js";

/**
 * Asserts that `write` rejects with a {@link SinkError} that is `retryable` or not and, when
 * `message` is given, whose message matches it.
 */
export async function assertRejectsWithSinkError(
  write: Promise<unknown>,
  retryable: boolean,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(write, (error: unknown) => {
    assert.ok(error instanceof SinkError, `a SinkError, got ${String(error)}`);
    assert.equal(error.retryable, retryable, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}
