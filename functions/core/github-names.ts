// Ownership of names on github.com: a package named for a GitHub repository must clone that repository.
import type { PackageName } from './model.js';

/** Canonical clone URLs (clone-urls.ts) of github.com start so: scheme and host in lower case, no port. */
export const GITHUB_PREFIX = 'https://github.com/';

/**
 * The `owner/repository` a canonical clone URL names on github.com (trailing `.git` or `/` dropped), null for a
 * github.com URL that names no repository (`https://github.com/owner`, deeper paths), undefined for another host.
 */
export function githubFullName(canonicalCloneUrl: string): string | null | undefined {
  if (!canonicalCloneUrl.startsWith(GITHUB_PREFIX)) return undefined;
  const path = canonicalCloneUrl.slice(GITHUB_PREFIX.length).replace(/\/$/, '').replace(/\.git$/, '');
  const segments = path.split('/');
  if (segments.length !== 2 || segments.some((s) => s === '')) return null;
  return path;
}

/**
 * Why `pkg` may not be built from `canonicalCloneUrl`, or undefined when it may: on github.com the full name must be
 * the URL's owner/repository, compared case-insensitively (GitHub's names are). Other hosts and file:// are first
 * come, first served (request-builds.ts keeps the name with its first clone URL).
 */
export function githubNameProblem(pkg: PackageName, canonicalCloneUrl: string): string | undefined {
  const fullName = githubFullName(canonicalCloneUrl);
  if (fullName === undefined) return undefined;
  if (fullName === null) return `clone_url ${canonicalCloneUrl} names no repository: a github.com clone URL is https://github.com/<owner>/<repository>`;
  const wanted = `${pkg.namespace}/${pkg.name}`;
  if (fullName.toLowerCase() !== wanted.toLowerCase()) {
    return `full_name ${wanted} does not match clone_url ${canonicalCloneUrl}: a package cloned from github.com is named `
      + `for its repository (${fullName})`;
  }
  return undefined;
}
