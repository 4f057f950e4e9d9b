// Clone URLs judged as git reads them: a table of escapes (encoded traversal, case, backslashes, hosts git ignores,
// other transports, links out of an allowed directory), each with the prefixes allowed and the verdict, through the
// service's judge and the build scripts' copy of the same form rules; and what git itself does with the worst ones.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { realPathOnThisMachine } from '#adapters/paths/real-path.js';
import { judgeCloneUrl, parseCloneUrl } from '#core/clone-urls.js';
import * as buildInputs from '../../buildspec/job-inputs.mjs';

const exec = promisify(execFile);

// A real directory tree: allowed/ holds a repository and a link out to outside/, which holds the secret.
const root = mkdtempSync(join(tmpdir(), 'enot-clone-urls-'));
const allowedDir = join(root, 'allowed');
const outsideDir = join(root, 'outside');
mkdirSync(join(allowedDir, 'repo'), { recursive: true });
mkdirSync(join(outsideDir, 'secret'), { recursive: true });
symlinkSync(outsideDir, join(allowedDir, 'link'));
symlinkSync(join(allowedDir, 'repo'), join(allowedDir, 'inner-link'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const A = `file://${allowedDir}/`;
const GH = 'https://github.com/';

/** [url, allowed prefixes, the canonical URL it is built from, or the problem it is refused for] */
const TABLE: [string, string[], string | RegExp][] = [
  // The report: git decodes %2F, so this is allowed/../outside/secret.
  [`${A}..%2Foutside%2Fsecret`, [A], /\.\. path segments \(also percent-encoded\)/],
  [`${A}%2e%2e/outside/secret`, [A], /\.\. path segments \(also percent-encoded\)/],
  [`${A}%2E%2E%2Foutside`, [A], /\.\. path segments \(also percent-encoded\)/],
  [`${A}..%252Foutside%252Fsecret`, [A], /\.\. path segments \(also percent-encoded\)/],
  [`${A}..%25252Foutside`, [A], /\.\. path segments \(also percent-encoded\)/],
  [`${A}..%5Coutside`, [A], /\.\. path segments \(also percent-encoded\)/],
  [`${A}repo%2Fx`, [A], /percent-escapes/],
  [`${A}re%70o`, [A], /percent-escapes/],
  [`${GH}a/%2e%2E/b`, [GH], /\.\. path segments/],
  [`${GH}org%2F..%2Fother/repo`, [`${GH}org/`], /\.\. path segments \(also percent-encoded\)/],
  // Dot segments, written out.
  [`${A}../outside/secret`, [A], /must not contain \.\. path segments$/],
  [`${A}./repo/../../outside`, [A], /\.\. path segments/],
  [`${A}./repo`, [A], /\. path segments/],
  [`${GH}a/../../etc`, [GH], /\.\. path segments/],
  [`${GH}a/b..c`, [GH], `${GH}a/b..c`],
  [`${GH}a/.b`, [GH], `${GH}a/.b`],
  [`${A}repo//x`, [A], /empty path segments/],
  [`${A}repo/`, [A], `${A}repo/`],
  // Backslashes: git takes them literally, URL parsers as slashes.
  [`${A}repo\\..\\..\\outside`, [A], /backslashes/],
  [`${GH}a\\b`, [GH], /backslashes/],
  // Links out of an allowed directory, resolved on this machine.
  [`${A}link/secret`, [A], /symbolic link to .*outside\/secret, outside the allowed prefixes/],
  [`${A}link`, [A], /symbolic link/],
  [`${A}inner-link`, [A], `${A}inner-link`],
  [`${A}repo`, [A], `${A}repo`],
  // `file://` alone admits every local path, links or not.
  [`${A}link/secret`, ['file://'], `${A}link/secret`],
  [`${A}not-yet-there/x`, [A], `${A}not-yet-there/x`],
  [`file://${allowedDir}-evil/x`, [`file://${allowedDir}`], /must start with one of/],
  [`file://${allowedDir}`, [`file://${allowedDir}`], `file://${allowedDir}`],
  [`file://${allowedDir}/`, [A], /must start with one of/],
  // file: forms git reads otherwise: a host it ignores, no // (ssh to a host "file"), the scheme's case.
  [`file://localhost${allowedDir}/repo`, [A], `${A}repo`],
  [`file://LOCALHOST${allowedDir}/repo`, [A], `${A}repo`],
  [`file://evil.example${allowedDir}/repo`, [A], /git ignores the host/],
  [`file://localhost:22${allowedDir}/repo`, [A], /git ignores the host/],
  [`file:${allowedDir}/repo`, [A], /https:\/\/ or file:\/\//],
  [`FILE://${allowedDir}/repo`, [A], `${A}repo`],
  ['file:///', ['file:///'], /must name a directory/],
  // Scheme and host in any case, path as written.
  ['HTTPS://GitHub.COM/A/b', [GH], `${GH}A/b`],
  ['https://github.com/A/b.git', [GH], `${GH}A/b.git`],
  ['https://github.com:443/a/b', [GH], `${GH}a/b`],
  ['https://github.com:8443/a/b', [GH], /must start with one of/],
  ['https://git.example.org:8443/a/b', ['https://git.example.org:8443/'], 'https://git.example.org:8443/a/b'],
  ['https://github.com:0/a/b', [GH], /port of 1-65535/],
  ['https://github.com:99999/a/b', [GH], /port of 1-65535/],
  ['https://github.com:/a/b', [GH], /port of 1-65535/],
  ['https://github.com.evil.example/a/b', ['https://github.com'], /must start with one of/],
  ['https://github.com./a/b', [GH], /host of letters/],
  ['https://github.com/a/b', ['https://github.com'], `${GH}a/b`],
  ['https://github.com/a/b', ['HTTPS://GITHUB.COM/'], `${GH}a/b`],
  ['https://github.com/', [GH], /must start with one of/],
  ['https://github.com', ['https://github.com'], /name a repository/],
  ['https://xn--github-xyz.com/a', [GH], /must start with one of/],
  ['https://gïthub.com/a/b', [GH], /host of letters/],
  ['https://[::1]/a/b', ['https://[::1]/'], 'https://[::1]/a/b'],
  ['https://[::1]:8443/a/b', ['https://[::1]:8443/'], 'https://[::1]:8443/a/b'],
  ['https://[fe80::1%25eth0]/a/b', ['https://[fe80::1%25eth0]/'], /percent-escapes/],
  ['https://127.0.0.1/a/b', [GH], /must start with one of/],
  // Credentials, queries, fragments.
  ['https://user@github.com/a/b', [GH], /credentials/],
  ['https://user:token@github.com/a/b', [GH], /credentials/],
  ['https://github.com@evil.example/a/b', ['https://github.com'], /credentials/],
  [`file://user@localhost${allowedDir}/repo`, [A], /credentials/],
  ['https://github.com/a/b?x=1', [GH], /query or a fragment/],
  ['https://github.com/a/b#main', [GH], /query or a fragment/],
  ['https://github.com/a/b@v1', [GH], `${GH}a/b@v1`],
  ['https://github.com/a/b;rm', [GH], /path may hold only/],
  ['https://github.com/a/b:c', [GH], /path may hold only/],
  // Other transports git would run.
  ['ext::sh -c touch% /tmp/x', ['ext::'], /https:\/\/ or file:\/\//],
  ['ext::sh', ['ext::'], /https:\/\/ or file:\/\//],
  ['fd::3', ['fd::'], /https:\/\/ or file:\/\//],
  ['http://github.com/a/b', ['http://github.com/'], /https:\/\/ or file:\/\//],
  ['ssh://git@github.com/a/b', ['ssh://'], /https:\/\/ or file:\/\//],
  ['git+ssh://github.com/a/b', ['git+ssh://'], /https:\/\/ or file:\/\//],
  ['git://github.com/a/b', ['git://'], /https:\/\/ or file:\/\//],
  ['git@github.com:a/b.git', ['git@github.com:'], /https:\/\/ or file:\/\//],
  ['github.com/a/b', ['github.com/'], /https:\/\/ or file:\/\//],
  [`${allowedDir}/repo`, [allowedDir], /https:\/\/ or file:\/\//],
  ['https::github.com/a/b', [GH], /https:\/\/ or file:\/\//],
  // Whitespace, control characters, options, size.
  ['https://github.com/a/b c', [GH], /spaces or control/],
  ['https://github.com/a/b\n', [GH], /spaces or control/],
  ['https://github.com/a/b\u0000', [GH], /spaces or control/],
  ['https://github.com/a/\u00a0b', [GH], /spaces or control/],
  ['https://github.com/a/\u200bb', [GH], /spaces or control/],
  ['https://github.com/a/\u0085b', [GH], /spaces or control/],
  ['-uhttps://github.com/a/b', [GH], /must not start with -/],
  ['', [GH], /must not be empty/],
  [`${GH}${'a'.repeat(1000)}`, [GH], /at most 1000/],
  ['https://github.com/a/b', [], /no clone URL prefix is configured/],
];

/** Rows refused only for their prefix or a link: the form is fine, so the build scripts (which know no prefixes) take them. */
function refusedForForm(verdict: string | RegExp): boolean {
  return verdict instanceof RegExp && !/must start with one of|symbolic link|no clone URL prefix/.test(verdict.source);
}

describe('clone URLs as git reads them', () => {
  it.each(TABLE)('%j under %j', (url, allowed, expected) => {
    const verdict = judgeCloneUrl(url, allowed, realPathOnThisMachine);
    if (typeof expected === 'string') expect(verdict).toEqual({ ok: true, canonical: expected });
    else expect(verdict.ok ? 'accepted' : verdict.problem).toMatch(expected);

    const form = parseCloneUrl(url);
    const scripts = buildInputs.parseCloneUrl(url);
    if (refusedForForm(expected)) {
      expect(form.ok).toBe(false);
      expect(scripts.problem, 'the build refuses it too').toBe(form.ok ? undefined : form.problem);
    } else {
      expect(form.ok).toBe(true);
      expect(scripts.problem).toBeUndefined();
      expect(scripts.canonical, 'the build clones the same URL').toBe(form.ok ? form.url.canonical : undefined);
    }
  });

  it('matches what git does: it decodes escapes and ignores the host of a file:// URL, so both are refused', async () => {
    // A real repository outside the allowed directory, and the URLs that reached it before.
    const secret = join(outsideDir, 'secret');
    writeFileSync(join(secret, 'secret.txt'), 'secret\n');
    const git = (args: string[], cwd = secret) => exec('git', args, { cwd, env: { ...process.env, GIT_ALLOW_PROTOCOL: 'file' } });
    await git(['init', '-q']);
    await git(['add', '.']);
    await git(['-c', 'user.email=t@example.org', '-c', 'user.name=t', 'commit', '-qm', 'secret']);
    for (const url of [`${A}..%2Foutside%2Fsecret`, `file://evil.example${outsideDir}/secret`]) {
      const dest = mkdtempSync(join(root, 'clone-'));
      await git(['clone', '-q', '--', url, join(dest, 'c')], root);
      expect(judgeCloneUrl(url, [A]).ok, url).toBe(false);
    }
  });

  it("follows links only when given a way to (the service's machine); without one, file:// paths are judged as written", () => {
    expect(judgeCloneUrl(`${A}link/secret`, [A])).toEqual({ ok: true, canonical: `${A}link/secret` });
    expect(realPathOnThisMachine(join(allowedDir, 'link', 'secret', 'not', 'there'))).toBe(join(outsideDir, 'secret', 'not', 'there'));
    expect(realPathOnThisMachine(join(allowedDir, 'inner-link'))).toBe(join(allowedDir, 'repo'));
  });
});
