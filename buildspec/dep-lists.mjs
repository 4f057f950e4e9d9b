// What a project declares it depends on, read from its files as its build tool would read them: rebar.config's deps
// (by the helper escript's file:consult, which evaluates nothing), rebar.config.script's (evaluated by the caller in
// the offline sandbox: it is code), erlang.mk's DEPS and BUILD_DEPS with their dep_<name> lines, enot_config.json's
// deps. Every dependency comes out in one form, a Dep.
import path from 'node:path';
import { isRegularFile, readSmallFile } from './files.mjs';
import { parseHelperAnswer } from './erlang.mjs';

/**
 * @typedef {{ name: string, source: 'git', url: string, rev: { kind: 'tag' | 'branch' | 'ref' | 'default', value: string } }
 *   | { name: string, source: 'hex', pkg: string, requirement: string }
 *   | { name: string, source: 'unsupported', why: string }} Dep
 * `name` is the application's name (the directory it goes in); a hex dep's `pkg` is its package name in the repository.
 */

/** A name that may name a directory of deps and an Erlang application. */
export const DEP_NAME = /^[A-Za-z][A-Za-z0-9_]{0,99}$/;

/** The helper's dependency kinds (buildspec/erlang.mjs) as Deps. */
export function depsFromHelper(answer) {
  return answer.deps.map((d) => {
    if (d.kind === 'hex') return { name: d.name, source: 'hex', pkg: d.url || d.name, requirement: d.rev };
    const kinds = { 'git-tag': 'tag', 'git-branch': 'branch', 'git-ref': 'ref', git: 'default' };
    if (kinds[d.kind]) return { name: d.name, source: 'git', url: d.url, rev: { kind: kinds[d.kind], value: d.rev } };
    return { name: d.name, source: 'unsupported', why: 'only git and hex dependencies are fetched' };
  });
}

/**
 * rebar.config's deps and plugins, read by `readConfig(args)` (the helper's `deps` command run outside the sandbox for
 * rebar.config, inside it for rebar.config.script), which resolves with the helper's answers. Null when the
 * directory has neither file.
 * @param {(args: string[], evaluates: boolean) => Promise<string>} readConfig
 * @returns {Promise<{ deps: Dep[], plugins: string[], answer: ReturnType<typeof parseHelperAnswer> } | null>}
 */
export async function readRebarDeps(dir, readConfig) {
  const config = path.join(dir, 'rebar.config');
  const script = path.join(dir, 'rebar.config.script');
  const hasScript = isRegularFile(script);
  if (!hasScript && !isRegularFile(config)) return null;
  const answer = parseHelperAnswer(await readConfig(hasScript ? ['deps', config, script] : ['deps', config], hasScript));
  return { deps: depsFromHelper(answer), plugins: answer.plugins, answer };
}

/** The Makefile when it is erlang.mk's (it mentions erlang.mk), else ''. */
export function erlangMkFile(dir) {
  for (const name of ['GNUmakefile', 'makefile', 'Makefile']) {
    const file = path.join(dir, name);
    if (!isRegularFile(file)) continue;
    return /erlang\.mk/.test(readSmallFile(file)) ? file : '';
  }
  return '';
}

/**
 * erlang.mk's DEPS and BUILD_DEPS (TEST_DEPS and DOC_DEPS are not built; LOCAL_DEPS are OTP's own), each with its
 * `dep_<name> = git <url> <rev>` or `dep_<name> = hex <version> [<package>]` line. A dep without such a line would
 * come from erlang.mk's package index, which is not read here.
 * @returns {Dep[]}
 */
export function readErlangMkDeps(makefile) {
  const text = readSmallFile(makefile).replace(/\\\n/g, ' ');
  const names = [];
  const specs = new Map();
  for (const line of text.split('\n')) {
    const list = /^\s*(?:DEPS|BUILD_DEPS)\s*(?:\+|:|\?)?=\s*(.*)$/.exec(line);
    if (list) names.push(...list[1].replace(/#.*$/, '').split(/\s+/).filter(Boolean));
    const spec = /^\s*dep_([A-Za-z0-9_]+)\s*(?::|\?)?=\s*(\S+)\s+(\S+)(?:\s+(\S+))?/.exec(line);
    if (spec) specs.set(spec[1], { method: spec[2], where: spec[3], extra: spec[4] ?? '' });
    const commit = /^\s*dep_([A-Za-z0-9_]+)_commit\s*(?::|\?)?=\s*(\S+)/.exec(line);
    if (commit) specs.set(`${commit[1]}:commit`, { method: 'commit', where: commit[2], extra: '' });
  }
  return [...new Set(names)].map((name) => {
    const spec = specs.get(name);
    const commit = specs.get(`${name}:commit`)?.where;
    if (spec?.method === 'git') {
      const value = commit ?? spec.extra;
      // erlang.mk checks out whatever the rev names; a tag is tried first, as `--branch` takes tags and branches.
      return { name, source: 'git', url: spec.where, rev: value ? { kind: /^[0-9a-f]{40}$/.test(value) ? 'ref' : 'tag', value } : { kind: 'default', value: '' } };
    }
    if (spec?.method === 'hex') return { name, source: 'hex', pkg: spec.extra || name, requirement: commit ?? spec.where };
    if (spec) return { name, source: 'unsupported', why: `erlang.mk's fetch method ${JSON.stringify(spec.method)} is not supported (only git and hex)` };
    return { name, source: 'unsupported', why: `no dep_${name} line says where it comes from (erlang.mk's package index is not read)` };
  });
}

/**
 * enot_config.json's deps: `{name, url, tag}` or `{name, url, branch}` are git; without url, hex (as enot fetches
 * them). Null when the file is missing or has no deps list.
 * @returns {Dep[] | null}
 */
export function readEnotDeps(dir) {
  const text = readSmallFile(path.join(dir, 'enot_config.json'));
  if (!text) return null;
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (!parsed || !Array.isArray(parsed.deps)) return null;
  return parsed.deps.map((d, i) => {
    const name = typeof d?.name === 'string' ? d.name : `#${i + 1}`;
    if (typeof d?.url === 'string' && d.url !== '') {
      if (typeof d.tag === 'string' && d.tag) return { name, source: 'git', url: d.url, rev: { kind: 'tag', value: d.tag } };
      if (typeof d.branch === 'string' && d.branch) return { name, source: 'git', url: d.url, rev: { kind: 'branch', value: d.branch } };
      return { name, source: 'git', url: d.url, rev: { kind: 'default', value: '' } };
    }
    if (typeof d?.tag === 'string') return { name, source: 'hex', pkg: name, requirement: d.tag };
    return { name, source: 'unsupported', why: 'an enot dependency needs a url, or a tag for hex' };
  });
}
