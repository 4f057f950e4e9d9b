// A hex repository for build tests, served on 127.0.0.1 in repo.hex.pm's layout: /packages/<name> (the registry
// entry: a gzipped Signed protobuf whose payload, a Package, is signed with RSA-SHA512 by a key made here) and
// /tarballs/<name>-<version>.tar (a real version-3 package tarball: VERSION, CHECKSUM, metadata.config,
// contents.tar.gz). A package can be made with a wrong CHECKSUM, as a tampered tarball would have.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface HexPackageSpec {
  name: string;
  version: string;
  /** The package's files (paths relative to its root): src/*.erl, src/*.app.src, include/, rebar.config... */
  files: Record<string, string>;
  /** Its requirements, as the registry lists them. */
  dependencies?: { package: string; requirement: string }[];
  /** The tarball's contents are changed after CHECKSUM was computed (the registry then knows neither checksum). */
  badChecksum?: boolean;
}

export interface HexRepo {
  url: string;
  /** The PEM public key the registry entries are signed with (ENOT_HEX_REPO_PUBLIC_KEY). */
  publicKey: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/** A ustar archive of regular files (names under 100 bytes), as hex tarballs and their contents are. */
export function tarOf(files: Record<string, Buffer | string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const header = Buffer.alloc(512);
    header.write(name, 0, 100, 'utf8');
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** A version-3 hex tarball and its checksums (inner: CHECKSUM's; outer: the whole tarball's sha256). */
export function hexTarball(spec: HexPackageSpec): { tarball: Buffer; inner: Buffer; outer: Buffer } {
  const version = Buffer.from('3');
  const metadata = Buffer.from(
    `{<<"name">>,<<"${spec.name}">>}.\n{<<"version">>,<<"${spec.version}">>}.\n{<<"build_tools">>,[<<"rebar3">>]}.\n`,
  );
  let contents = gzipSync(tarOf(spec.files));
  const inner = createHash('sha256').update(version).update(metadata).update(contents).digest();
  if (spec.badChecksum) contents = gzipSync(tarOf({ ...spec.files, 'src/injected.erl': '-module(injected).\n' }));
  const tarball = tarOf({
    VERSION: version,
    CHECKSUM: inner.toString('hex').toUpperCase(),
    'metadata.config': metadata,
    'contents.tar.gz': contents,
  });
  return { tarball, inner, outer: createHash('sha256').update(tarball).digest() };
}

// ---- protobuf, the few messages of the registry ------------------------------------------------------------------

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function bytesField(field: number, value: Buffer | string): Buffer {
  const data = Buffer.isBuffer(value) ? value : Buffer.from(value);
  return Buffer.concat([varint(field * 8 + 2), varint(data.length), data]);
}

/** Starts the repository serving `packages` (several versions of one name make one registry entry). */
export async function startHexRepo(packages: HexPackageSpec[]): Promise<HexRepo> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const tarballs = new Map<string, Buffer>();
  const releases = new Map<string, Buffer[]>();
  for (const spec of packages) {
    const { tarball, inner, outer } = hexTarball(spec);
    tarballs.set(`/tarballs/${spec.name}-${spec.version}.tar`, tarball);
    const deps = (spec.dependencies ?? []).map((d) => bytesField(3, Buffer.concat([bytesField(1, d.package), bytesField(2, d.requirement)])));
    // A tampered tarball: the registry has the checksums of the package as published, not of what is served.
    const release = Buffer.concat([bytesField(1, spec.version), bytesField(2, inner), ...deps, ...(spec.badChecksum ? [] : [bytesField(5, outer)])]);
    releases.set(spec.name, [...(releases.get(spec.name) ?? []), release]);
  }
  const registry = new Map<string, Buffer>();
  for (const [name, list] of releases) {
    const payload = Buffer.concat([...list.map((r) => bytesField(1, r)), bytesField(2, name), bytesField(3, 'hexpm')]);
    const signature = sign('sha512', payload, privateKey);
    registry.set(`/packages/${name}`, gzipSync(Buffer.concat([bytesField(1, payload), bytesField(2, signature)])));
  }
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    requests.push(path);
    const body = registry.get(path) ?? tarballs.get(path);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
