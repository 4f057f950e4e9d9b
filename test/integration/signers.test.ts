// The two Signers: the local key file (made once, 0600, reused, rotated with old keys kept) and KMS, through
// aws-sdk-client-mock standing in for KMS (a mock, backed by a real P-256 key so its signatures are real). Both
// must make the same statement bytes for the same build.
import { createHash, createPublicKey, generateKeyPairSync, sign as signWith, verify, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetPublicKeyCommand, KMSClient, SignCommand, type SignCommandInput } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KEY_FILE, KEYS_FILE, LocalKeySigner } from '#adapters/signing/local-key-signer.js';
import { KMS_RAW_MESSAGE_LIMIT, KmsSigner } from '#adapters/signing/kms-signer.js';
import { canonicalJson, signStatement, type Statement } from '#core/signing.js';
import type { PublicKey, PublicKeyRecords } from '#core/ports.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'enot-signers-'));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** The keys the signing path records, kept in memory (the SQL store's version is tested over HTTP). */
function keyRecords(): PublicKeyRecords & { recorded: PublicKey[] } {
  const recorded: PublicKey[] = [];
  return {
    recorded,
    async recordPublicKeys(keys) {
      for (const k of keys) if (!recorded.some((r) => r.keyId === k.keyId)) recorded.push(k);
    },
    async listPublicKeys() {
      return recorded;
    },
  };
}

const FACTS: Omit<Statement, 'key_id'> = {
  namespace: 'comtihon', name: 'mongodb-erlang', ref: 'v3.2.0', commit: 'a'.repeat(40), erl_version: '25',
  otp_version: '25.2.3', arch: 'amd64', sha256: 'b'.repeat(64), size: 51234, built_at: '2026-11-21T01:31:09.123Z',
};

describe('canonical JSON', () => {
  it('sorts keys at every depth, drops no value, adds no space', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x', null], c: true }, é: 'ü' })).toBe('{"a":{"c":true,"d":[1,"x",null]},"b":1,"é":"ü"}');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/finite/);
  });
});

describe('the local key signer', () => {
  it('makes a P-256 key at first open, mode 0600, and the next open reuses it', async () => {
    const dir = join(root, 'first');
    const first = await LocalKeySigner.open(dir);
    expect((await stat(join(dir, KEY_FILE))).mode & 0o777).toBe(0o600);
    const again = await LocalKeySigner.open(dir);
    expect(await again.keyId()).toBe(await first.keyId());
    const [key] = await again.publicKeys();
    expect(key).toMatchObject({ keyId: await first.keyId(), notAfter: null, jwk: { kty: 'EC', crv: 'P-256' } });
    // The signature is DER and verifies with the PEM it lists.
    const signature = await first.sign(Buffer.from('hello'));
    expect(Buffer.from(signature)[0]).toBe(0x30);
    expect(verify('sha256', Buffer.from('hello'), key.pem, Buffer.from(signature))).toBe(true);
    expect(verify('sha256', Buffer.from('hellO'), key.pem, Buffer.from(signature))).toBe(false);
  });

  it('two opens at once end with one key', async () => {
    const dir = join(root, 'race');
    const signers = await Promise.all([LocalKeySigner.open(dir), LocalKeySigner.open(dir), LocalKeySigner.open(dir)]);
    const ids = new Set(await Promise.all(signers.map((s) => s.keyId())));
    expect(ids.size).toBe(1);
  });

  it('narrows a key file others could read to 0600', async () => {
    const dir = join(root, 'wide');
    await mkdir(dir, { recursive: true });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await writeFile(join(dir, KEY_FILE), String(privateKey.export({ type: 'pkcs8', format: 'pem' })), { mode: 0o644 });
    await LocalKeySigner.open(dir);
    expect((await stat(join(dir, KEY_FILE))).mode & 0o777).toBe(0o600);
  });

  it('rotates to a new key file and keeps listing the old key with the end of its validity', async () => {
    const dir = join(root, 'rotate');
    const old = await LocalKeySigner.open(dir, () => new Date('2026-01-01T00:00:00Z'));
    await rm(join(dir, KEY_FILE));
    const current = await LocalKeySigner.open(dir, () => new Date('2026-06-01T00:00:00Z'));
    expect(await current.keyId()).not.toBe(await old.keyId());
    const keys = await current.publicKeys();
    expect(keys.map((k) => [k.keyId, k.notBefore.toISOString(), k.notAfter?.toISOString() ?? null])).toEqual([
      [await old.keyId(), '2026-01-01T00:00:00.000Z', '2026-06-01T00:00:00.000Z'],
      [await current.keyId(), '2026-06-01T00:00:00.000Z', null],
    ]);
    expect(JSON.parse(await readFile(join(dir, KEYS_FILE), 'utf8'))).toHaveLength(2);
  });
});

describe('the KMS signer, against aws-sdk-client-mock', () => {
  const kms = mockClient(KMSClient);
  const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555';
  let privateKey: KeyObject;
  let signed: SignCommandInput[];

  beforeEach(async () => {
    kms.reset();
    signed = [];
    ({ privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
    const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    kms.on(GetPublicKeyCommand, { KeyId: KEY_ARN }).resolves({
      KeyId: KEY_ARN, PublicKey: new Uint8Array(spki), KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY',
      SigningAlgorithms: ['ECDSA_SHA_256'],
    });
    // A RAW message is hashed and signed as KMS does (a DIGEST one is only recorded: node cannot sign a prehash).
    kms.on(SignCommand).callsFake((input: SignCommandInput) => {
      signed.push(input);
      const signature = signWith('sha256', Buffer.from(input.Message!), { key: privateKey, dsaEncoding: 'der' });
      return { KeyId: KEY_ARN, Signature: new Uint8Array(signature), SigningAlgorithm: 'ECDSA_SHA_256' };
    });
  });

  function signer(): KmsSigner {
    return new KmsSigner({ kmsKeyId: KEY_ARN, client: new KMSClient({ region: 'eu-west-1' }) });
  }

  it('makes the same statement bytes as the local signer with the same key, each verifying', async () => {
    const dir = join(root, 'same-key');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, KEY_FILE), String(privateKey.export({ type: 'pkcs8', format: 'pem' })), { mode: 0o600 });
    const local = await LocalKeySigner.open(dir);
    const viaKms = await signStatement({ signer: signer(), store: keyRecords() }, FACTS);
    const viaFile = await signStatement({ signer: local, store: keyRecords() }, FACTS);
    expect(viaKms.keyId).toBe(await local.keyId());
    expect(viaKms.statement.equals(viaFile.statement)).toBe(true);
    expect(viaKms.statement.toString('utf8')).toBe(canonicalJson({ ...FACTS, key_id: viaKms.keyId }));
    const pem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' });
    expect(verify('sha256', viaKms.statement, pem, viaKms.signature)).toBe(true);
    expect(verify('sha256', viaFile.statement, pem, viaFile.signature)).toBe(true);
    expect(signed).toEqual([expect.objectContaining({ KeyId: KEY_ARN, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' })]);
    expect(kms.commandCalls(GetPublicKeyCommand)).toHaveLength(1);
  });

  it('records its public key before the first signature, and sends a long message as its digest', async () => {
    const records = keyRecords();
    const big = Buffer.alloc(KMS_RAW_MESSAGE_LIMIT + 1, 'x');
    const s = signer();
    const { keyId } = await signStatement({ signer: s, store: records }, FACTS);
    expect(records.recorded.map((k) => k.keyId)).toEqual([keyId]);
    await s.sign(big);
    expect(signed.at(-1)).toMatchObject({ MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' });
    expect(Buffer.from(signed.at(-1)!.Message!).equals(createHash('sha256').update(big).digest())).toBe(true);
  });

  it('refuses a key that is not an ECC_NIST_P256 signing key', async () => {
    kms.on(GetPublicKeyCommand).resolves({ KeyId: KEY_ARN, PublicKey: new Uint8Array([1]), KeySpec: 'RSA_2048', SigningAlgorithms: ['RSASSA_PSS_SHA_256'] });
    await expect(signer().keyId()).rejects.toThrow(/not an ECC_NIST_P256 signing key/);
  });
});
