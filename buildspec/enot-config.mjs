// enot_config.json as a package carries it: the repository's own completed, or one generated from what the build
// knows (the job, the OTP release, the dependencies rebar.config or erlang.mk declares).
import path from 'node:path';
import { oneLine, redactUrl } from './common.mjs';
import { isRegularFile, readSmallFile } from './files.mjs';


/**
 * enot_config.json as the enot client needs it: the repository's own (when it has one) completed, else generated.
 * What describes this very package (name, fullname, tag, url, erlang, with_source) is always set from the build;
 * app_vsn and deps are kept when the repository sets them.
 */
export function enotConfig(settings, state, withSource, log) {
  const { job } = settings;
  let base = {};
  const file = path.join(settings.repoDir, 'enot_config.json');
  const text = readSmallFile(file);
  if (text) {
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) base = parsed;
      else log.line('the repository\'s enot_config.json is not a JSON object; generating one');
    } catch {
      log.line('the repository\'s enot_config.json is not valid JSON; generating one');
    }
  }
  const deps = Array.isArray(base.deps) ? base.deps : detectDeps(settings, state, log);
  return {
    ...base,
    name: job.name,
    fullname: job.fullName,
    tag: job.ref,
    url: redactUrl(job.cloneUrl),
    app_vsn: typeof base.app_vsn === 'string' && base.app_vsn !== '' ? base.app_vsn : state.appVsn,
    deps,
    erlang: [state.otpMajor],
    with_source: withSource,
  };
}

/** Dependencies in enot's form ({name, url, tag|branch} or {name, tag} for hex), from rebar.config or erlang.mk. */
function detectDeps(settings, state, log) {
  const repo = settings.repoDir;
  const deps = [];
  const leftOut = (name, why) => log.line(`dependency ${oneLine(name, 80)} left out of enot_config.json: ${why}`);
  if (state.rebarDeps) {
    for (const d of state.rebarDeps) {
      if (d.kind === 'git-tag') deps.push({ name: d.name, url: d.url, tag: d.rev });
      else if (d.kind === 'git-branch') deps.push({ name: d.name, url: d.url, branch: d.rev });
      else if (d.kind === 'hex' && /^\d+(\.\d+)*([-+][0-9A-Za-z.-]+)?$/.test(d.rev)) deps.push({ name: d.name, tag: d.rev });
      else leftOut(d.name, d.kind === 'hex' ? 'a hex package without an exact version' : `a ${d.kind} dependency enot cannot name`);
    }
    return deps;
  }
  const makefile = ['GNUmakefile', 'makefile', 'Makefile'].map((f) => path.join(repo, f)).find(isRegularFile);
  const text = makefile ? readSmallFile(makefile).replace(/\\\n/g, ' ') : '';
  if (!/erlang\.mk/.test(text)) return deps;
  const names = [];
  const specs = new Map();
  for (const line of text.split('\n')) {
    const list = /^\s*DEPS\s*(?:\+|:|\?)?=\s*(.*)$/.exec(line);
    if (list) names.push(...list[1].split(/\s+/).filter(Boolean));
    const spec = /^\s*dep_([A-Za-z0-9_]+)\s*(?::|\?)?=\s*(\S+)\s+(\S+)(?:\s+(\S+))?/.exec(line);
    if (spec) specs.set(spec[1], { method: spec[2], where: spec[3], rev: spec[4] ?? '' });
  }
  for (const name of names) {
    const spec = specs.get(name);
    if (spec?.method === 'git' && spec.rev) deps.push({ name, url: spec.where, tag: spec.rev });
    else if (spec?.method === 'hex') deps.push({ name, tag: spec.where });
    else leftOut(name, 'not a git dependency with a tag');
  }
  return deps;
}
