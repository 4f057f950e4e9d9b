// Admin use cases on packages: owner tokens, deleting builds, refs and packages with their blobs, moving a clone
// URL, and listing names registered against another GitHub repository. Authorization is the caller's
// (authorization.ts); these assume it was checked.
import { randomUUID } from 'node:crypto';
import { judgeCloneUrl } from './clone-urls.js';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';
import { githubFullName, githubNameProblem, GITHUB_PREFIX } from './github-names.js';
import { newOwnerToken, tokenSha256 } from './authorization.js';
import type { PackageName, Repository } from './model.js';
import type { BlobStore, DeletionScope, Log, PackageAdminStore, RealPath } from './ports.js';

export interface PackageAdminDeps {
  store: PackageAdminStore;
  log: Log;
}

export interface PackageDeletionDeps extends PackageAdminDeps {
  blobs: Pick<BlobStore, 'delete'>;
}

export interface CloneUrlMoveDeps extends PackageAdminDeps {
  config: { allowedCloneUrls: readonly string[] };
  realPath?: RealPath;
}

/** An owner token as answered once, when issued. */
export interface IssuedOwnerToken {
  id: string;
  token: string;
  label: string;
  createdAt: Date;
}

/** A name registered against another GitHub repository than the one it names. */
export interface NameConflict {
  fullName: string;
  cloneUrl: string;
  /** The owner/repository the clone URL names. */
  clonedRepository: string | null;
  registeredAt: Date;
}

const MAX_LABEL = 200;

function fullNameOf(pkg: PackageName): string {
  return `${pkg.namespace}/${pkg.name}`;
}

async function repositoryOf(store: Pick<PackageAdminStore, 'getRepository'>, pkg: PackageName): Promise<Repository> {
  const repository = await store.getRepository(pkg);
  if (!repository) throw new NotFoundError(`No package ${fullNameOf(pkg)}`);
  return repository;
}

/**
 * Issues an owner token of a package.
 * Output: the token, answered this once; only its SHA-256 is stored.
 * Errors: NotFoundError for an unknown package; ValidationError for a label over MAX_LABEL characters.
 */
export async function issueOwnerToken(deps: PackageAdminDeps, pkg: PackageName, label = ''): Promise<IssuedOwnerToken> {
  if (label.length > MAX_LABEL) throw new ValidationError(`Validation failed: label must be at most ${MAX_LABEL} characters`);
  const repository = await repositoryOf(deps.store, pkg);
  const token = newOwnerToken();
  const stored = await deps.store.createOwnerToken({ id: randomUUID(), repositoryId: repository.id, tokenSha256: tokenSha256(token), label });
  deps.log.info('owner token issued', { package: fullNameOf(pkg), token_id: stored.id });
  return { id: stored.id, token, label: stored.label, createdAt: stored.createdAt };
}

/** Revokes an owner token of a package; NotFoundError when the package has no token of that id. */
export async function revokeOwnerToken(deps: PackageAdminDeps, pkg: PackageName, tokenId: string): Promise<void> {
  const repository = await repositoryOf(deps.store, pkg);
  if (!(await deps.store.deleteOwnerToken(repository.id, tokenId))) {
    throw new NotFoundError(`No owner token ${tokenId} of ${fullNameOf(pkg)}`);
  }
  deps.log.info('owner token revoked', { package: fullNameOf(pkg), token_id: tokenId });
}

/**
 * Deletes what `target` names, rows first, in one transaction, then its artifacts and logs from the blob store.
 * Errors: NotFoundError when nothing matches (`No <what>`); ConflictError when a build in scope is still queued or running (its
 * worker would write a build that no longer exists). A blob that cannot be removed after the commit is logged: the
 * rows are gone, so nothing serves it, and an operator can remove it by its key.
 */
async function deleteScope(deps: PackageDeletionDeps, scope: DeletionScope, what: string): Promise<void> {
  const builds = await deps.store.transaction(async (tx) => {
    const locked = await tx.lockBuildsIn(scope);
    const inFlight = locked.filter((b) => b.status !== 'succeeded' && b.status !== 'failed');
    if (inFlight.length > 0) {
      throw new ConflictError(`${what} has builds in flight (${inFlight.map((b) => b.id).join(', ')}); delete it once they end`);
    }
    if (!(await tx.deleteIn(scope))) throw new NotFoundError(`No ${what}`);
    return locked;
  });
  const keys = builds.flatMap((b) => [b.artifactKey, b.logKey]).filter((k): k is string => k !== null);
  const failed: string[] = [];
  for (const key of keys) {
    try {
      await deps.blobs.delete(key);
    } catch (error) {
      failed.push(key);
      deps.log.error('a deleted build\'s blob could not be removed; nothing serves it, remove it by hand', error, { key });
    }
  }
  deps.log.info('deleted', { what, builds: builds.length, blobs_removed: keys.length - failed.length });
}

/** Deletes one finished build (DELETE /v2/builds/{id}); NotFoundError for an unknown build. */
export async function deleteBuild(deps: PackageDeletionDeps, buildId: string): Promise<void> {
  await deleteScope(deps, { kind: 'build', buildId }, `build ${buildId}`);
}

/** Deletes every version of one ref of a package, for every OTP release, with their builds; NotFoundError when there is none. */
export async function deleteRef(deps: PackageDeletionDeps, pkg: PackageName, ref: string): Promise<void> {
  const repository = await repositoryOf(deps.store, pkg);
  await deleteScope(deps, { kind: 'ref', repositoryId: repository.id, ref }, `version ${ref} of ${fullNameOf(pkg)}`);
}

/** Deletes a package with its versions, builds, owner tokens and blobs; NotFoundError for an unknown package. */
export async function deletePackage(deps: PackageDeletionDeps, pkg: PackageName): Promise<void> {
  const repository = await repositoryOf(deps.store, pkg);
  await deleteScope(deps, { kind: 'package', repositoryId: repository.id }, `package ${fullNameOf(pkg)}`);
}

/**
 * Moves a package to another clone URL (the admin's way to hand a name on another host to its rightful owner).
 * The URL is judged as a build request's is (allowed, canonical), and on github.com it must still name the package.
 * Output: the canonical URL stored. Builds already made stay; the next ones clone from the new URL.
 */
export async function moveCloneUrl(deps: CloneUrlMoveDeps, pkg: PackageName, cloneUrl: string): Promise<string> {
  const verdict = judgeCloneUrl(cloneUrl, deps.config.allowedCloneUrls, deps.realPath);
  if (!verdict.ok) throw new ValidationError(`Validation failed: clone_url ${verdict.problem}`);
  const nameProblem = githubNameProblem(pkg, verdict.canonical);
  if (nameProblem) throw new ValidationError(`Validation failed: ${nameProblem}`);
  const repository = await repositoryOf(deps.store, pkg);
  await deps.store.transaction((tx) => tx.setCloneUrl(repository.id, verdict.canonical));
  deps.log.info('clone URL moved', { package: fullNameOf(pkg), from: repository.cloneUrl, to: verdict.canonical });
  return verdict.canonical;
}

/**
 * The names registered against another GitHub repository than the one they name (registered before names were
 * owned): an admin frees each with DELETE /v2/packages/{ns}/{name}, or moves it.
 */
export async function listNameConflicts(deps: Pick<PackageAdminDeps, 'store'>): Promise<NameConflict[]> {
  const repositories = await deps.store.listRepositoriesCloningFrom(GITHUB_PREFIX);
  return repositories
    .filter((r) => githubNameProblem(r, r.cloneUrl) !== undefined)
    .map((r) => ({
      fullName: fullNameOf(r), cloneUrl: r.cloneUrl, clonedRepository: githubFullName(r.cloneUrl) ?? null, registeredAt: r.createdAt,
    }));
}
