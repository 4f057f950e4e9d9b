// Refs and OTP releases: git's own tag-name rules (checked against `git check-ref-format` itself), the service's
// narrower ref charset, the one spelling of a release, and the build scripts' copy of the same rules.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { gitTagNameProblem, isOtpRelease, refProblem } from '#core/version-names.js';
import { loadConfig } from '#functions/config.js';
import * as buildInputs from '../../buildspec/job-inputs.mjs';

const exec = promisify(execFile);

async function gitTakesTag(name: string): Promise<boolean> {
  try {
    await exec('git', ['check-ref-format', `refs/tags/${name}`]);
    return true;
  } catch {
    return false;
  }
}

// [name, git takes refs/tags/<name>, the service builds it]
const REFS: [string, boolean, boolean][] = [
  ['1.0.0', true, true],
  ['v2', true, true],
  ['release-1_2+b', true, true],
  ['master', true, true],
  ['a..b', false, false],
  ['a.lock', false, false],
  ['a.lock.b', true, true],
  ['x/a.lock', false, false],
  ['1.0.', false, false],
  ['.hidden', false, false],
  ['a/.b', false, false],
  ['a/b', true, false],
  ['a//b', false, false],
  ['a/', false, false],
  ['/a', false, false],
  ['a@{1}', false, false],
  ['a@b', true, false],
  ['@', true, false],
  ['a~1', false, false],
  ['a^', false, false],
  ['a:b', false, false],
  ['a?', false, false],
  ['a*', false, false],
  ['a[b', false, false],
  ['a\\b', false, false],
  ['a b', false, false],
  ['a\tb', false, false],
  ['a\u007fb', false, false],
  ['HEAD', true, false],
  ['head', true, true],
  ['-x', true, false],
  ['tag;rm', true, false],
  ['$(touch x)', false, false],
  ['9'.repeat(100), true, true],
  ['9'.repeat(101), true, false],
  ['', false, false],
];

describe('refs', () => {
  it.each(REFS)('%j: git %s, built %s', async (name, git, built) => {
    // '@' alone is the one name git takes under refs/tags/ that its rules refuse as a whole refname; both refuse it.
    if (name !== '@') expect(gitTagNameProblem(name) === undefined, 'gitTagNameProblem').toBe(git);
    if (name !== '' && name !== '@') expect(await gitTakesTag(name), 'git check-ref-format').toBe(git);
    expect(refProblem(name) === undefined, 'refProblem').toBe(built);
    expect(buildInputs.refProblem(name), 'the build scripts agree').toBe(refProblem(name));
    expect(buildInputs.gitTagNameProblem(name)).toBe(gitTagNameProblem(name));
  });

  it('says what is wrong in words a person can act on', () => {
    expect(refProblem('HEAD')).toBe('must be a git tag, not HEAD');
    expect(refProblem('a.lock')).toBe('must be a git tag: git refuses a tag name that ends with .lock');
    expect(refProblem('1.0.')).toBe('must be a git tag: git refuses a tag name that ends with .');
    expect(refProblem('a/b')).toMatch(/^must be a git tag: a letter or digit/);
    for (const [name, , built] of REFS) if (!built) expect(refProblem(name), name).toMatch(/^must be a git tag/);
  });
});

// [release, one spelling of a release]
const RELEASES: [string, boolean][] = [
  ['25', true],
  ['26.2', true],
  ['26.2.5', true],
  ['26.0', true],
  ['27.0.0', true],
  ['25.0.0.0', false],
  ['25.3.2.1', false],
  ['00000000000000000025', false],
  ['025', false],
  ['25.02', false],
  ['0', false],
  ['25.', false],
  ['.25', false],
  ['R16', false],
  ['25.x', false],
  ['25 ', false],
  ['', false],
  ['12345', false],
  ['25.10000', false],
  ['9999.9999.9999', true],
];

describe('OTP releases', () => {
  it.each(RELEASES)('%j: %s', (release, ok) => {
    expect(isOtpRelease(release)).toBe(ok);
    expect(buildInputs.OTP_RELEASE.test(release), 'the build scripts agree').toBe(ok);
  });

  it('holds for the configured default release too, so a request that leaves it out names the same version', () => {
    expect(loadConfig({ ENOT_DEFAULT_ERL_VERSION: '26.2' }).defaultErlVersion).toBe('26.2');
    expect(() => loadConfig({ ENOT_DEFAULT_ERL_VERSION: '25.0.0.0' })).toThrow(/ENOT_DEFAULT_ERL_VERSION/);
  });
});
