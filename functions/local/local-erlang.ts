// The Erlang/OTP installed on this machine: what `npm start` builds with, and the ERTS it serves from
// /download_erts/<release>. Asked of `erl` itself, with fixed code (nothing spliced in), as argv.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultScriptsDir } from '#adapters/builder/local-builder.js';
import { ERTS_CONTENT_TYPES, ertsBlobKey } from '#core/build-contract.js';
import { refreshErtsIndex, signErts } from '#core/register-erts.js';
import type { BlobStore, ErtsRecords, IndexStore, Log, Signer } from '#core/ports.js';
import type { Erts } from '#core/model.js';

const run = promisify(execFile);

export interface LocalOtp {
  /** The OTP release, as requests name it: "25". */
  release: string;
  /** The full OTP version: "25.2.3" (the release alone when the installation does not say). */
  version: string;
  /** The ERTS version: "13.1.5". */
  ertsVersion: string;
  /** The installation's root (code:root_dir()). */
  root: string;
}

const PROBE = 'io:format("~s~n~s~n~s~n", [erlang:system_info(otp_release), erlang:system_info(version), code:root_dir()]), halt().';

/** The OTP that `erl` (on PATH, or the given executable) belongs to; null when there is no working `erl`. */
export async function detectLocalOtp(erl = 'erl'): Promise<LocalOtp | null> {
  let stdout: string;
  try {
    ({ stdout } = await run(erl, ['-noshell', '-eval', PROBE], { timeout: 60_000, encoding: 'utf8' }));
  } catch {
    return null;
  }
  const [release = '', ertsVersion = '', root = ''] = stdout.split('\n').map((l) => l.trim());
  if (!/^\d+$/.test(release) || !/^[0-9.]+$/.test(ertsVersion) || !root) return null;
  let version = release;
  try {
    const text = (await readFile(join(root, 'releases', release, 'OTP_VERSION'), 'utf8')).trim();
    if (/^\d+(\.\d+)*$/.test(text)) version = text;
  } catch {
    // an installation without the file (some distributions): the release is all there is to say
  }
  return { release, version, ertsVersion, root };
}

export interface RegisterErtsOptions {
  store: ErtsRecords & IndexStore;
  blobs: BlobStore;
  /** Signs the ERTS statement and the ERTS index; without one (tests) the ERTS is registered unsigned. */
  signer?: Signer;
  /** What the statement names as arch; default: this machine's. */
  arch?: string;
  log?: Log;
  /** Where the tar is written before it is uploaded (removed afterwards). */
  scratchDir: string;
  /** The installation to pack; default: detectLocalOtp(). */
  otp?: LocalOtp;
  /** Holds pack-erts.mjs; default: the repository's buildspec/. */
  scriptsDir?: string;
}

export type RegisterErtsOutcome =
  | { kind: 'registered'; erts: Erts }
  /** Registered before with the same ERTS version (and its tar still there): nothing done. */
  | { kind: 'unchanged'; erts: Erts };

/**
 * Packs the local installation's ERTS with buildspec/pack-erts.mjs (the same packer the builder image uses) and
 * registers it under the OTP release ("25"), which is what /download_erts/{release} and the enot client ask for.
 * Skipped when that release is registered already with the same ERTS version. Throws when there is no `erl` or
 * packing fails; the caller decides whether that stops anything.
 */
export async function registerLocalErts(options: RegisterErtsOptions): Promise<RegisterErtsOutcome> {
  const { store, blobs } = options;
  const otp = options.otp ?? await detectLocalOtp();
  if (!otp) throw new Error('no Erlang/OTP installed on this machine: no ERTS to register');

  const signing = {
    store, signer: options.signer, config: { arch: options.arch ?? localArch() }, log: options.log ?? silentLog, blobs,
  };
  const existing = await store.getErts(otp.release);
  // Registered before signing existed (no statement): packed again below, so it gets one.
  if (existing && existing.ertsVersion === otp.ertsVersion && (existing.signed || !options.signer) && await blobs.stat(existing.key)) {
    return { kind: 'unchanged', erts: existing };
  }

  const scripts = options.scriptsDir ?? defaultScriptsDir();
  await mkdir(options.scratchDir, { recursive: true });
  const tar = join(options.scratchDir, `erts-${otp.release}-${process.pid}.tar`);
  try {
    const { stdout } = await run(process.execPath, [join(scripts, 'pack-erts.mjs'), otp.root, tar], {
      timeout: 300_000, encoding: 'utf8', maxBuffer: 1024 * 1024,
    });
    const packed = parsePacked(stdout);
    if (packed.release !== otp.release) {
      throw new Error(`pack-erts packed OTP ${packed.release} from ${otp.root}, not ${otp.release}`);
    }
    const key = ertsBlobKey(otp.release, packed.ertsVersion);
    const stored = await blobs.putFile(key, tar, ERTS_CONTENT_TYPES.tarball);
    const facts = { release: otp.release, ertsVersion: packed.ertsVersion, key, size: stored.size, sha256: stored.sha256 ?? packed.sha256 };
    const at = new Date();
    const signed = await signErts(signing, { ...facts, otpVersion: otp.version }, at);
    const erts = await store.putErts({ ...facts, createdAt: at, signed });
    await refreshErtsIndex(signing);
    return { kind: 'registered', erts };
  } finally {
    await rm(tar, { force: true });
  }
}

/** This machine's architecture as statements name it. */
function localArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

const silentLog: Log = { info() {}, warn() {}, error() {} };

interface Packed {
  release: string;
  ertsVersion: string;
  sha256: string;
}

function parsePacked(stdout: string): Packed {
  const last = stdout.trim().split('\n').pop() ?? '';
  let value: unknown;
  try {
    value = JSON.parse(last);
  } catch {
    throw new Error(`pack-erts printed no JSON: ${last.slice(0, 200)}`);
  }
  const v = value as Partial<Packed>;
  if (typeof v.release !== 'string' || typeof v.ertsVersion !== 'string' || typeof v.sha256 !== 'string') {
    throw new Error(`pack-erts printed an unexpected answer: ${last.slice(0, 200)}`);
  }
  return { release: v.release, ertsVersion: v.ertsVersion, sha256: v.sha256 };
}
