// What a version's two names may be: its ref (a git tag) and its OTP release, each in one spelling only.
// buildspec/steps/clone.mjs checks the same rules again before cloning (test/unit/version-names.test.ts keeps them alike).

/** The service's narrower charset: a letter or digit, then letters, digits and `. _ + -`, at most 100 in all. */
const REF_CHARS = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
// ASCII controls, space, DEL and the characters git's refname rules forbid anywhere.
// eslint-disable-next-line no-control-regex
const GIT_FORBIDDEN = /[\x00-\x20\x7f~^:?*[\\]/;

/**
 * What makes git refuse `refs/tags/<name>` ("ends with .lock"; the rules of `git check-ref-format`), or undefined:
 * no empty component, `//`, leading or trailing `/`; no component starting with `.` or ending with `.lock`; no `..`,
 * `@{`, control characters, space or any of `~ ^ : ? * [ \`; not ending with `.`; not `@` alone.
 */
export function gitTagNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name === '@') return 'is @';
  if (GIT_FORBIDDEN.test(name)) return 'contains a space, a control character or one of ~ ^ : ? * [ \\';
  if (name.includes('..')) return 'contains ..';
  if (name.includes('@{')) return 'contains @{';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'starts or ends with / or contains //';
  if (name.endsWith('.')) return 'ends with .';
  for (const component of name.split('/')) {
    if (component.startsWith('.')) return 'has a part starting with .';
    if (component.endsWith('.lock')) return 'ends with .lock';
  }
  return undefined;
}

/**
 * Why `ref` is not a tag this service builds, or undefined: a name git takes as a tag (gitTagNameProblem), not
 * `HEAD` (which names whatever the remote checked out, not a tag), in the service's charset (no `/`, nothing a shell,
 * a path or an option could misread). Whether the remote has it as a tag, not a branch, only the build can tell.
 */
export function refProblem(ref: string): string | undefined {
  if (ref === 'HEAD') return 'must be a git tag, not HEAD';
  const git = gitTagNameProblem(ref);
  if (git) return `must be a git tag: git refuses a tag name that ${git}`;
  if (!REF_CHARS.test(ref)) return 'must be a git tag: a letter or digit, then up to 99 of A-Z a-z 0-9 . _ + - (no "..")';
  return undefined;
}

/**
 * An OTP release in its one spelling: a major release (`25`), then at most two more parts (`26.2`, `26.2.5`), each
 * without leading zeros and of at most four digits. So `25.0.0.0` and `0025` name no release, and one release is
 * one version.
 */
export const OTP_RELEASE = /^[1-9][0-9]{0,3}(?:\.(?:0|[1-9][0-9]{0,3})){0,2}$/;

/** True for an OTP release in its one spelling (OTP_RELEASE). */
export function isOtpRelease(s: string): boolean {
  return OTP_RELEASE.test(s);
}
