// The peer: Verdaccio 5 as a child process on 127.0.0.1, no uplinks, its storage prepopulated with one
// package (metadata in Verdaccio's own storage format, and a tarball the size of our artifacts).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { waitForExit, type RunningServer } from './servers.js';

export const PEER_PACKAGE = 'enot-bench-pkg';
/** Versions in the package document: about what POST /versions lists for one of our packages. */
const PEER_VERSIONS = 10;
const START_TIMEOUT_MS = 60_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** The package document as Verdaccio stores it (storage/<name>/package.json). */
function packageDocument(port: number, tarball: Buffer): Record<string, unknown> {
  const shasum = createHash('sha1').update(tarball).digest('hex');
  const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
  const versions: Record<string, unknown> = {};
  const time: Record<string, string> = { created: '2024-01-01T00:00:00.000Z', modified: '2024-06-01T00:00:00.000Z' };
  for (let i = 0; i < PEER_VERSIONS; i++) {
    const version = `1.${i}.0`;
    const file = `${PEER_PACKAGE}-${version}.tgz`;
    versions[version] = {
      name: PEER_PACKAGE,
      version,
      description: 'A package the benchmark serves through Verdaccio',
      main: 'index.js',
      license: 'MIT',
      dependencies: {},
      _id: `${PEER_PACKAGE}@${version}`,
      _nodeVersion: '20.0.0',
      _npmVersion: '10.0.0',
      dist: { shasum, integrity, tarball: `http://127.0.0.1:${port}/${PEER_PACKAGE}/-/${file}` },
    };
    time[version] = new Date(Date.UTC(2024, 0, 1 + i * 10)).toISOString();
  }
  return {
    name: PEER_PACKAGE,
    versions,
    'dist-tags': { latest: `1.${PEER_VERSIONS - 1}.0` },
    time,
    _uplinks: {},
    _distfiles: {},
    _attachments: { [`${PEER_PACKAGE}-1.0.0.tgz`]: { shasum, version: '1.0.0' } },
    _rev: '3-0123456789abcdef',
    _id: PEER_PACKAGE,
    readme: '',
  };
}

/** Starts Verdaccio over a fresh storage under `dir`; `tarballBytes` is the size of the 1.0.0 tarball. */
export async function startVerdaccio(dir: string, tarballBytes: number): Promise<RunningServer> {
  const port = await freePort();
  const storage = join(dir, 'storage');
  await mkdir(join(storage, PEER_PACKAGE), { recursive: true });
  const tarball = randomBytes(tarballBytes);
  await writeFile(join(storage, PEER_PACKAGE, `${PEER_PACKAGE}-1.0.0.tgz`), tarball);
  await writeFile(join(storage, PEER_PACKAGE, 'package.json'), JSON.stringify(packageDocument(port, tarball), null, 2));
  const config = join(dir, 'config.yaml');
  // Logging at error level: the enot server under load logs nothing either.
  await writeFile(config, [
    `storage: ${JSON.stringify(storage)}`,
    'auth:',
    '  htpasswd:',
    `    file: ${JSON.stringify(join(dir, 'htpasswd'))}`,
    '    max_users: -1',
    'uplinks: {}',
    'packages:',
    "  '**':",
    '    access: $all',
    '    publish: $authenticated',
    'web:',
    '  enable: false',
    'log: { type: stdout, format: json, level: error }',
    '',
  ].join('\n'));

  const bin = join(dirname(createRequire(import.meta.url).resolve('verdaccio/package.json')), 'bin', 'verdaccio');
  const child = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: dir, NODE_ENV: 'production' },
  });
  // Kept (bounded) to explain a failed start; it warns about running as root otherwise.
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 10_000) stderr += chunk.toString('utf8');
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    child.kill('SIGTERM');
    await waitForExit(child, 10_000);
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Verdaccio exited (${child.exitCode}) before it was ready: ${stderr}`);
    const ready = await fetch(`${url}/-/ping`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ready) return { url, pid: child.pid!, stop };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await stop();
  throw new Error(`Verdaccio did not answer within ${START_TIMEOUT_MS} ms: ${stderr}`);
}
