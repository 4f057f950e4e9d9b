// The package step: the .ep, a reproducible tar of ebin/ and the directories a package carries, and its
// enot_config.json; only what lies inside the clone goes in.
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_OUTPUT } from '#core/build-contract-names.mjs';
import { BuildFailure, isInside, oneLine, requireDone } from '../common.mjs';
import { enotConfig } from '../enot-config.mjs';
import { realpathOrEmpty } from '../files.mjs';
import { writeTar } from '../tar.mjs';

/** What a package may hold; past it the package step fails rather than filling the disk or the bucket. */
const MAX_PACKAGE_BYTES = 512 * 1024 * 1024;
const MAX_PACKAGE_FILES = 50_000;
/** The directories a package carries besides ebin/ (see the .ep format in the legacy API). */
const PACKAGE_DIRS = ['priv', 'include', 'src', 'c_src'];

export async function packageStep({ settings, log, state }) {
  requireDone(state, ['compile']);
  const repo = settings.repoDir;
  const repoReal = fs.realpathSync(repo);
  const entries = [];
  const budget = { bytes: 0, files: 0 };
  const seen = new Set();
  collectDir(repoReal, path.join(repo, state.ebinDir), 'ebin', entries, budget, seen, log);
  const included = ['ebin'];
  for (const dir of PACKAGE_DIRS) {
    const full = path.join(repo, dir);
    if (!fs.existsSync(full)) continue;
    if (collectDir(repoReal, full, dir, entries, budget, seen, log)) included.push(dir);
  }
  const names = entries.map((e) => e.name);
  if (!names.some((n) => /^ebin\/[^/]+\.beam$/.test(n)) || !names.some((n) => /^ebin\/[^/]+\.app$/.test(n))) {
    throw new BuildFailure('package', 'the package would have no ebin/*.beam or no ebin/*.app; nothing to ship');
  }
  const config = enotConfig(settings, state, included.includes('src'), log);
  entries.push({ name: 'enot_config.json', type: 'file', data: Buffer.from(`${JSON.stringify(config, null, 2)}\n`) });
  const out = path.join(settings.outDir, BUILD_OUTPUT.artifact);
  const { size, sha256 } = writeTar(out, entries, { mtime: state.commitTime ?? 0 });
  state.artifactSize = size;
  state.artifactSha256 = sha256;
  log.line(`${BUILD_OUTPUT.artifact}: ${included.join('/, ')}/ and enot_config.json; ${entries.length} entries, ${size} bytes, sha256 ${sha256}`);
}

/**
 * Adds `dir` (and what it holds) under `prefix`. Links are followed only while they stay inside the repository, and
 * only directories and regular files are taken: the compile ran the repository's code, which may have left traps.
 * @returns {boolean} whether the directory was added
 */
function collectDir(repoReal, dir, prefix, entries, budget, seen, log) {
  const real = realpathOrEmpty(dir);
  if (!real || !isInside(repoReal, real)) {
    log.line(`left out ${prefix}/: it points outside the repository`);
    return false;
  }
  if (!fs.statSync(real).isDirectory() || seen.has(real)) return false;
  seen.add(real);
  entries.push({ name: `${prefix}/`, type: 'dir' });
  for (const name of fs.readdirSync(real).sort()) {
    const rel = `${prefix}/${name}`;
    let source = path.join(real, name);
    let st;
    try {
      st = fs.lstatSync(source);
    } catch {
      // A name that does not survive the round trip through a string (not UTF-8), or one gone meanwhile.
      log.line(`left out ${oneLine(rel, 200)}: unreadable name or gone`);
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = realpathOrEmpty(source);
      if (!target || !isInside(repoReal, target)) {
        log.line(`left out ${rel}: a link to outside the repository`);
        continue;
      }
      source = target;
      st = fs.statSync(target);
    }
    if (st.isDirectory()) {
      collectDir(repoReal, source, rel, entries, budget, seen, log);
    } else if (st.isFile()) {
      budget.bytes += st.size;
      budget.files += 1;
      if (budget.bytes > MAX_PACKAGE_BYTES || budget.files > MAX_PACKAGE_FILES) {
        throw new BuildFailure('package', `the package is too large (more than ${MAX_PACKAGE_BYTES} bytes or ${MAX_PACKAGE_FILES} files)`);
      }
      entries.push({ name: rel, type: 'file', source, executable: (st.mode & 0o111) !== 0 });
    } else {
      log.line(`left out ${rel}: not a regular file`);
    }
  }
  return true;
}
