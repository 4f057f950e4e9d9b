// The Signer locally: an ECDSA P-256 key in ENOT_DATA_DIR/signing/key.pem (mode 0600), made on first start with
// node:crypto and reused after. Rotation is a new key file: every public key that signed stays in keys.json with
// its validity, so statements made with a rotated key still verify.
import {
  createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign as signBytes, type KeyObject,
} from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PublicKey, Signer } from '#core/ports.js';
import { publicKeyForms, publicKeyId } from './public-key.js';

/** keys.json as written: dates as ISO strings. */
interface KeysFileEntry {
  key_id: string;
  pem: string;
  jwk: PublicKey['jwk'];
  not_before: string;
  not_after: string | null;
}

export const KEY_FILE = 'key.pem';
export const KEYS_FILE = 'keys.json';

export class LocalKeySigner implements Signer {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly id: string,
    private readonly keys: PublicKey[],
  ) {}

  /**
   * Opens the key in `dir`, making one when there is none (created exclusively, so two processes starting at once
   * end with the same key), and lists it in keys.json; a key new to keys.json closes the validity of the one before.
   */
  static async open(dir: string, now: () => Date = () => new Date()): Promise<LocalKeySigner> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const privateKey = await loadOrCreateKey(join(dir, KEY_FILE));
    const publicKey = createPublicKey(privateKey);
    const id = publicKeyId(publicKey);
    const keys = await readKeysFile(join(dir, KEYS_FILE));
    if (!keys.some((k) => k.keyId === id)) {
      const at = now();
      for (const k of keys) if (k.notAfter === null) k.notAfter = at;
      const { pem, jwk } = publicKeyForms(publicKey);
      keys.push({ keyId: id, pem, jwk, notBefore: at, notAfter: null });
      await writeKeysFile(join(dir, KEYS_FILE), keys);
    }
    return new LocalKeySigner(privateKey, id, keys);
  }

  async keyId(): Promise<string> {
    return this.id;
  }

  async sign(bytes: Uint8Array): Promise<Uint8Array> {
    // DER is node's default encoding for ECDSA signatures: what openssl dgst -verify reads.
    return signBytes('sha256', bytes, { key: this.privateKey, dsaEncoding: 'der' });
  }

  async publicKeys(): Promise<PublicKey[]> {
    return this.keys.map((k) => ({ ...k }));
  }
}

async function loadOrCreateKey(path: string): Promise<KeyObject> {
  try {
    const handle = await open(path, 'wx', 0o600);
    try {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      await handle.writeFile(String(privateKey.export({ type: 'pkcs8', format: 'pem' })));
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  // A key another process is still writing reads short: wait for it to be whole, a bounded number of times.
  for (let attempt = 0; ; attempt++) {
    const text = await readFile(path, 'utf8');
    if (text.includes('-----END')) {
      // A key file others could read is narrowed to its owner: the private key must not leak through a umask.
      if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
      const key = createPrivateKey(text);
      publicKeyForms(createPublicKey(key));
      return key;
    }
    if (attempt >= 50) throw new Error(`${path} holds no PEM private key`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function readKeysFile(path: string): Promise<PublicKey[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const entries = JSON.parse(text) as KeysFileEntry[];
  return entries.map((e) => ({
    keyId: e.key_id, pem: e.pem, jwk: e.jwk, notBefore: new Date(e.not_before), notAfter: e.not_after ? new Date(e.not_after) : null,
  }));
}

async function writeKeysFile(path: string, keys: PublicKey[]): Promise<void> {
  const entries: KeysFileEntry[] = keys.map((k) => ({
    key_id: k.keyId, pem: k.pem, jwk: k.jwk, not_before: k.notBefore.toISOString(), not_after: k.notAfter?.toISOString() ?? null,
  }));
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, JSON.stringify(entries, null, 2) + '\n');
  await rename(tmp, path);
}
