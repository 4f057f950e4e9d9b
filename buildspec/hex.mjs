// A client of a hex repository (repo.hex.pm's layout: /packages/<name> and /tarballs/<name>-<version>.tar), for
// trusted code only: the registry entry of a package (gzipped, signed protobuf; the signature checked against the
// repository's public key when one is known), a version chosen by a requirement, and the package tarball with every
// checksum there is verified before anything of it is unpacked.
import { createHash, verify } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { readTar, TarError } from './tar-read.mjs';

/** repo.hex.pm's public key (https://hex.pm/docs/public_keys): the registry's signatures are checked against it. */
export const HEXPM_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApqREcFDt5vV21JVe2QNB
Edvzk6w36aNFhVGWN5toNJRjRJ6m4hIuG4KaXtDWVLjnvct6MYMfqhC79HAGwyF+
IqR6Q6a5bbFSsImgBJwz1oadoVKD6ZNetAuCIK84cjMrEFRkELtEIPNHblCzUkkM
3rS9+DPlnfG8hBvGi6tvQIuZmXGCxF/73hU0/MyGhbmEjIKRtG6b0sJYKelRLTPW
XgK7s5pESgiwf2YC/2MGDXjAJfpfCd0RpLdvd4eRiXtVlE9qO9bND94E7PgQ/xqZ
J1i2xWFndWa6nfFnRxZmCStCOZWYYPlaxr+FZceFbpMwzTNs4g3d4tLNUcbKAIH4
0wIDAQAB
-----END PUBLIC KEY-----
`;
export const HEXPM_URL = 'https://repo.hex.pm';

const MAX_REGISTRY_BYTES = 16 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 60_000;
const NAME_PATTERN = /^[a-z][a-z0-9_]{0,99}$/;
const VERSION_PATTERN = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** A problem with a hex package: the build fails with this message. */
export class HexError extends Error {}

/**
 * The registry's entry of a package.
 * @param {{ repoUrl: string, publicKey: string }} repo publicKey '' when the repository's key is unknown (not checked)
 * @returns {Promise<{ name: string, signed: boolean, releases: Array<{ version: string, innerChecksum: string,
 *   outerChecksum: string, retired: boolean, dependencies: Array<{ package: string, requirement: string, optional: boolean, app: string }> }> }>}
 */
export async function readRegistry(repo, name) {
  if (!NAME_PATTERN.test(name)) throw new HexError(`${JSON.stringify(name.slice(0, 100))} is not a hex package name`);
  const body = await fetchLimited(`${repo.repoUrl}/packages/${name}`, MAX_REGISTRY_BYTES, `the registry entry of ${name}`);
  let signed;
  try {
    signed = fields(gunzipSync(body, { maxOutputLength: MAX_REGISTRY_BYTES }));
  } catch {
    throw new HexError(`the registry entry of ${name} is not a gzipped signed registry record`);
  }
  const payload = one(signed, 1);
  const signature = one(signed, 2);
  if (!payload) throw new HexError(`the registry entry of ${name} has no payload`);
  if (repo.publicKey) {
    let good = false;
    try {
      good = Boolean(signature) && verify('sha512', payload, repo.publicKey, signature);
    } catch {
      good = false;
    }
    if (!good) throw new HexError(`the registry entry of ${name} is not signed by the repository's key`);
  }
  const pkg = fields(payload);
  const text = (b) => (b ? b.toString('utf8') : '');
  const releases = (pkg.get(1) ?? []).map((raw) => {
    const r = fields(raw);
    return {
      version: text(one(r, 1)),
      innerChecksum: (one(r, 2) ?? Buffer.alloc(0)).toString('hex'),
      outerChecksum: (one(r, 5) ?? Buffer.alloc(0)).toString('hex'),
      retired: r.has(4),
      dependencies: (r.get(3) ?? []).map((d) => {
        const dep = fields(d);
        return { package: text(one(dep, 1)), requirement: text(one(dep, 2)), optional: one(dep, 3) === 1, app: text(one(dep, 4)) };
      }),
    };
  });
  const registered = text(one(pkg, 2));
  if (registered && registered !== name) throw new HexError(`the registry entry of ${name} describes ${JSON.stringify(registered)}`);
  return { name, signed: Boolean(repo.publicKey), releases };
}

/**
 * The newest release a requirement admits ('' or undefined: any), retired and pre-releases only when nothing else
 * matches or the requirement names a pre-release. Null when none does.
 */
export function pickRelease(releases, requirement) {
  const admits = requirementMatcher(requirement ?? '');
  const candidates = releases.filter((r) => VERSION_PATTERN.test(r.version) && admits(r.version));
  candidates.sort((a, b) => compareSemver(b.version, a.version));
  const wantsPre = /\d-/.test(requirement ?? '');
  return candidates.find((r) => !r.retired && (wantsPre || !r.version.includes('-'))) ?? candidates[0] ?? null;
}

/**
 * The package tarball of a release, verified: its sha256 against the registry's outer checksum (when the registry
 * has one), its CHECKSUM file against the sha256 of VERSION, metadata.config and contents.tar.gz, and that against the
 * registry's inner checksum. Only then is contents.tar.gz read.
 * @returns {Promise<{ size: number, metadata: string, contents: Array<{ name: string, type: 'file' | 'dir', data?: Buffer, mode: number }> }>}
 */
export async function fetchPackage(repo, name, release, maxBytes) {
  const what = `hex package ${name} ${release.version}`;
  const tarball = await fetchLimited(`${repo.repoUrl}/tarballs/${name}-${release.version}.tar`, maxBytes, what);
  const outer = createHash('sha256').update(tarball).digest('hex');
  if (release.outerChecksum && outer !== release.outerChecksum) {
    throw new HexError(`${what}: checksum mismatch: the tarball's sha256 is ${outer}, the registry says ${release.outerChecksum}`);
  }
  let files;
  try {
    files = new Map(readTar(tarball, maxBytes).entries.filter((e) => e.type === 'file').map((e) => [e.name, e.data]));
  } catch (err) {
    throw new HexError(`${what}: not a hex tarball (${err instanceof TarError ? err.message : 'unreadable'})`);
  }
  const version = files.get('VERSION');
  const metadata = files.get('metadata.config');
  const contents = files.get('contents.tar.gz');
  const stated = files.get('CHECKSUM')?.toString('utf8').trim().toLowerCase();
  if (!version || !metadata || !contents || !stated) {
    throw new HexError(`${what}: not a hex tarball (VERSION, CHECKSUM, metadata.config and contents.tar.gz are required)`);
  }
  if (version.toString('utf8').trim() !== '3') throw new HexError(`${what}: tarball format ${version.toString('utf8').trim().slice(0, 10)} is not supported (only 3)`);
  const inner = createHash('sha256').update(version).update(metadata).update(contents).digest('hex');
  if (stated !== inner) throw new HexError(`${what}: checksum mismatch: CHECKSUM says ${stated.slice(0, 64)}, the contents hash to ${inner}`);
  if (release.innerChecksum && release.innerChecksum !== inner) {
    throw new HexError(`${what}: checksum mismatch: the registry says ${release.innerChecksum}, the contents hash to ${inner}`);
  }
  let unpacked;
  try {
    unpacked = readTar(gunzipSync(contents, { maxOutputLength: maxBytes }), maxBytes).entries;
  } catch (err) {
    throw new HexError(`${what}: contents.tar.gz ${err instanceof TarError ? err.message : 'cannot be read (or unpacks past the size limit)'}`);
  }
  return { size: tarball.length, metadata: metadata.toString('utf8'), contents: unpacked };
}

/** GET with a time limit and a size limit; HexError on any failure. */
async function fetchLimited(url, maxBytes, what) {
  let response;
  try {
    response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (err) {
    throw new HexError(`fetching ${what} from ${url} failed: ${err instanceof Error ? (err.cause?.message ?? err.message) : String(err)}`);
  }
  if (response.status === 404) throw new HexError(`${what} is not in the hex repository (${url}: 404)`);
  if (!response.ok) throw new HexError(`fetching ${what} from ${url} failed: HTTP ${response.status}`);
  const chunks = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.length;
    if (size > maxBytes) throw new HexError(`${what} is larger than the ${maxBytes} bytes left for dependencies`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

// ---- protobuf: just enough of the wire format for the registry's messages -----------------------------------------

/** The fields of a message: number -> values (Buffers for length-delimited fields, numbers for varints). */
function fields(buf) {
  const out = new Map();
  let at = 0;
  const varint = () => {
    let value = 0;
    let shift = 0;
    for (;;) {
      if (at >= buf.length || shift > 49) throw new Error('bad varint');
      const b = buf[at++];
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return value;
      shift += 7;
    }
  };
  while (at < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let value;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = varint();
      if (at + len > buf.length) throw new Error('truncated field');
      value = buf.subarray(at, at + len);
      at += len;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (value !== undefined) out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

function one(message, field) {
  return message.get(field)?.[0];
}

// ---- versions and requirements (Elixir's Version: `~> 1.2`, `>= 1.0.0 and < 2.0.0`, `1.2.3`, ... `or` ...) ------

function parseSemver(v) {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?/.exec(v);
  return m ? { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ?? '' } : null;
}

export function compareSemver(a, b) {
  const pa = parseSemver(a);
  const pb = parseSemver(b);
  if (!pa || !pb) return 0;
  for (let i = 0; i < 3; i++) if (pa.nums[i] !== pb.nums[i]) return pa.nums[i] - pb.nums[i];
  if (pa.pre === pb.pre) return 0;
  if (!pa.pre) return 1;
  if (!pb.pre) return -1;
  return pa.pre < pb.pre ? -1 : 1;
}

/** A predicate over versions; a requirement it cannot read admits nothing. */
function requirementMatcher(requirement) {
  const text = requirement.trim();
  if (text === '') return () => true;
  const alternatives = text.split(/\s+or\s+/).map((alt) => alt.split(/\s+and\s+/).map(clause));
  if (alternatives.some((alt) => alt.some((c) => c === null))) return () => false;
  return (v) => alternatives.some((alt) => alt.every((c) => c(v)));
}

function clause(text) {
  const m = /^(~>|==|!=|>=|<=|>|<)?\s*(\d+(?:\.\d+){1,2}(?:-[0-9A-Za-z.-]+)?)$/.exec(text.trim());
  if (!m) return null;
  const op = m[1] ?? '==';
  const parts = m[2].split('-')[0].split('.');
  const full = parts.length === 2 ? `${m[2].replace(/^(\d+\.\d+)/, '$1.0')}` : m[2];
  if (op === '~>') {
    const upper = parts.length === 2 ? `${Number(parts[0]) + 1}.0.0-0` : `${parts[0]}.${Number(parts[1]) + 1}.0-0`;
    return (v) => compareSemver(v, full) >= 0 && compareSemver(v, upper) < 0;
  }
  const cmp = (v) => compareSemver(v, full);
  return {
    '==': (v) => cmp(v) === 0, '!=': (v) => cmp(v) !== 0, '>=': (v) => cmp(v) >= 0,
    '<=': (v) => cmp(v) <= 0, '>': (v) => cmp(v) > 0, '<': (v) => cmp(v) < 0,
  }[op];
}
