#!/usr/bin/env node
// Packs an OTP installation's ERTS as /download_erts/<release> serves it: a plain tar whose entries sit under
// erts-<vsn>/ (the enot client untars it, takes the first erts-* entry, marks bin/ executable, rewrites ROOTDIR).
//
//   node pack-erts.mjs [<otp-root> | <path-to-erl>] <out.tar>
//
// Without a root, the `erl` on PATH says where its installation is. Prints {release, ertsVersion, otpVersion, size,
// sha256} as JSON. Run at local service start for the local release, and in the builder image for each release.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROBE_EVAL, readOtpVersion } from './erlang.mjs';
import { which } from './common.mjs';
import { writeTar } from './tar.mjs';

/**
 * @param {string} rootOrErl an OTP root directory, an erl executable, or '' for the erl on PATH
 * @param {string} outFile
 */
export function packErts(rootOrErl, outFile) {
  const root = findRoot(rootOrErl);
  const { release, ertsVersion } = describe(root);
  const ertsDir = path.join(root, `erts-${ertsVersion}`);
  const entries = [];
  walk(ertsDir, `erts-${ertsVersion}`, entries);
  // SOURCE_DATE_EPOCH, when set, makes the tar reproducible across machines; else a fixed time does it per machine.
  const mtime = /^\d+$/.test(process.env.SOURCE_DATE_EPOCH ?? '') ? Number(process.env.SOURCE_DATE_EPOCH) : 0;
  fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
  const { size, sha256 } = writeTar(outFile, entries, { mtime });
  return { release, ertsVersion, otpVersion: readOtpVersion(root, release) || release, size, sha256 };
}

function findRoot(rootOrErl) {
  if (rootOrErl) {
    const st = fs.statSync(rootOrErl);
    if (st.isDirectory()) return path.resolve(rootOrErl);
  }
  const erl = rootOrErl || which('erl', process.env.PATH ?? '');
  if (!erl) throw new Error('no OTP root given and no erl on PATH');
  const probe = spawnSync(erl, ['-noshell', '-eval', PROBE_EVAL], { shell: false, encoding: 'utf8', timeout: 60_000 });
  const [, root = ''] = (probe.stdout ?? '').split('\n');
  if (probe.status !== 0 || !root) throw new Error(`${erl} did not say where its OTP root is (exit ${probe.status})`);
  return root;
}

/** The release ("25") and ERTS version ("13.1.5") of a root, from releases/start_erl.data or its directories. */
function describe(root) {
  try {
    const [ertsVersion, release] = fs.readFileSync(path.join(root, 'releases', 'start_erl.data'), 'utf8').trim().split(/\s+/);
    if (ertsVersion && release && fs.existsSync(path.join(root, `erts-${ertsVersion}`))) return { release, ertsVersion };
  } catch {
    // fall through to the directories
  }
  const erts = fs.readdirSync(root).filter((d) => /^erts-[0-9.]+$/.test(d));
  const releases = fs.existsSync(path.join(root, 'releases'))
    ? fs.readdirSync(path.join(root, 'releases')).filter((d) => /^\d+$/.test(d))
    : [];
  if (erts.length !== 1 || releases.length !== 1) {
    throw new Error(`cannot tell the ERTS of ${root} (erts dirs: ${erts.join(', ') || 'none'}; releases: ${releases.join(', ') || 'none'})`);
  }
  return { release: releases[0], ertsVersion: erts[0].slice('erts-'.length) };
}

function walk(dir, prefix, entries) {
  entries.push({ name: `${prefix}/`, type: 'dir' });
  for (const name of fs.readdirSync(dir)) {
    const full = path.join(dir, name);
    const rel = `${prefix}/${name}`;
    const st = fs.lstatSync(full);
    if (st.isSymbolicLink()) entries.push({ name: rel, type: 'symlink', target: fs.readlinkSync(full) });
    else if (st.isDirectory()) walk(full, rel, entries);
    else if (st.isFile()) entries.push({ name: rel, type: 'file', source: full, executable: (st.mode & 0o111) !== 0 });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  if (args.length < 1 || args.length > 2) {
    process.stderr.write('usage: node pack-erts.mjs [<otp-root> | <path-to-erl>] <out.tar>\n');
    process.exitCode = 2;
  } else {
    try {
      const [rootOrErl, out] = args.length === 2 ? args : ['', args[0]];
      process.stdout.write(`${JSON.stringify(packErts(rootOrErl, out))}\n`);
    } catch (err) {
      process.stderr.write(`pack-erts: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  }
}
