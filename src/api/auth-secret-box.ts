/**
 * Seals the SigV4 secret access keys of API keys at rest.
 *
 * SigV4 is a shared-secret scheme: to check a signature the server recomputes it, so it must
 * hold each secret access key itself, not a hash. Those secrets are stored in the state file
 * encrypted with AES-256-GCM under a 256-bit key kept in a separate file,
 * `<dataDir>/keys.secret`, created with mode 0600 on first use. A copy of the state file
 * alone (a backup, a support bundle) then holds no usable AWS secret; someone who can read
 * the whole data directory can, so protect the directory (0700, its own user) as well. The
 * key id is the additional authenticated data, so a sealed secret cannot be moved to
 * another key's row.
 *
 * Losing `keys.secret` loses every key's SigV4 secret (their `rb_` tokens keep working);
 * revoke those keys and create new ones.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { RelaybusError } from "../errors.js";

/** The key file's name in the data directory. */
export const SECRET_KEY_FILE_NAME = "keys.secret";

const VERSION = "v1";
const KEY_BYTES = 32;
const IV_BYTES = 12;

/** Seals and opens secrets with the data directory's key. */
export interface SecretBox {
  /** Encrypts `secret`, bound to `keyId`; creates the key file on first use. */
  seal(keyId: string, secret: string): string;
  /** Decrypts what {@link seal} gave for the same `keyId`; throws `InternalError` when it cannot. */
  open(keyId: string, sealed: string): string;
}

/** A box over `<dataDir>/keys.secret`; the file is read (or created) on first use only. */
export function createSecretBox(dataDir: string): SecretBox {
  const path = join(dataDir, SECRET_KEY_FILE_NAME);
  let key: Buffer | undefined;

  const loadKey = (create: boolean): Buffer => {
    if (key !== undefined) return key;
    try {
      key = decodeKey(readFileSync(path, "utf8"), path);
      return key;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || !create) throw boxError(`cannot read ${path}`, error);
    }
    const fresh = randomBytes(KEY_BYTES);
    try {
      // `wx`: never overwrite a key another process wrote meanwhile; 0600: owner only.
      const fd = openSync(path, "wx", 0o600);
      try {
        writeSync(fd, `${fresh.toString("hex")}\n`);
      } finally {
        closeSync(fd);
      }
      key = fresh;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw boxError(`cannot create ${path}`, error);
      key = decodeKey(readFileSync(path, "utf8"), path);
    }
    return key;
  };

  return {
    seal(keyId, secret) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", loadKey(true), iv);
      cipher.setAAD(Buffer.from(keyId));
      const encrypted = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
      return [VERSION, iv, encrypted, cipher.getAuthTag()].map((p) => (typeof p === "string" ? p : p.toString("base64url"))).join(".");
    },
    open(keyId, sealed) {
      const [version, iv, encrypted, tag] = sealed.split(".");
      if (version !== VERSION || iv === undefined || encrypted === undefined || tag === undefined) {
        throw new RelaybusError("InternalError", `the sealed SigV4 secret of key ${keyId} is not in a known format`);
      }
      try {
        const decipher = createDecipheriv("aes-256-gcm", loadKey(false), Buffer.from(iv, "base64url"));
        decipher.setAAD(Buffer.from(keyId));
        decipher.setAuthTag(Buffer.from(tag, "base64url"));
        return Buffer.concat([decipher.update(Buffer.from(encrypted, "base64url")), decipher.final()]).toString("utf8");
      } catch (error) {
        throw boxError(`cannot open the SigV4 secret of key ${keyId} (was ${path} replaced?)`, error);
      }
    },
  };
}

function decodeKey(text: string, path: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new RelaybusError("InternalError", `${path}: expected 64 hex characters`);
  return Buffer.from(hex, "hex");
}

function boxError(what: string, error: unknown): RelaybusError {
  if (error instanceof RelaybusError) return error;
  return new RelaybusError("InternalError", `${what}: ${String(error)}`, { cause: error });
}
