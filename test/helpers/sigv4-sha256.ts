/**
 * The hash `@smithy/signature-v4` wants (its `Checksum` shape: SHA-256, or HMAC-SHA256 when
 * given a secret), made of node:crypto, so that tests sign requests exactly as the AWS SDK does.
 */
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";

export class Sha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Buffer {
  if (typeof data === "string") return data;
  return data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
