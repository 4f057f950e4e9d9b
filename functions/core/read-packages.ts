// Read use cases behind /search, /last_builds, /builds and /versions: a Store query rendered as DTOs.
import type { PackageName, VersionFilter } from './model.js';
import {
  toBuildDTO, toPackageDTO, toVersionDTO, type BuildDTO, type PackageDTO, type VersionDTO,
} from './package-dto.js';
import type { PackageReads } from './ports.js';

/** The most entries one search answers. */
export const SEARCH_LIMIT = 100;
/** The most builds /last_builds answers; larger requests are capped. */
export const LAST_BUILDS_MAX = 100;
export const LAST_BUILDS_DEFAULT = 20;

export interface PackageSearch {
  /** Substring of the package name, matched case-insensitively. */
  name: string;
  namespace?: string;
  ref?: string;
  erlVersion?: string;
}

/**
 * Searches packages by name.
 * Input: a name substring and optional namespace, ref and OTP release.
 * Output: at most SEARCH_LIMIT PackageDTOs, newest first, one per (package, ref, erl_version).
 * Primary course: the store picks each version's latest succeeded build (else its latest failed
 * one); each becomes a PackageDTO whose path leads to the artifact or to the failure's log.
 */
export async function searchPackages(store: PackageReads, search: PackageSearch): Promise<PackageDTO[]> {
  const builds = await store.searchPackages({ ...search, limit: SEARCH_LIMIT });
  return builds.map(toPackageDTO);
}

/**
 * Lists the latest successful builds across all packages.
 * Input: how many (capped at LAST_BUILDS_MAX).
 * Output: PackageDTOs, newest first, one per (package, ref, erl_version).
 */
export async function listLastBuilds(store: PackageReads, n: number): Promise<PackageDTO[]> {
  const builds = await store.lastSuccessfulBuilds(Math.min(n, LAST_BUILDS_MAX));
  return builds.map(toPackageDTO);
}

/**
 * Lists the downloadable builds of one package.
 * Input: the package and version filters (none = every version; else any filter may match).
 * Output: BuildDTOs of succeeded builds, newest first; an unknown package gives an empty list.
 */
export async function listDownloadableBuilds(
  store: PackageReads, pkg: PackageName, filters: VersionFilter[],
): Promise<BuildDTO[]> {
  const builds = await store.listSuccessfulBuilds(pkg, filters);
  return builds.map(toBuildDTO);
}

/**
 * Lists the versions of one package that can be installed.
 * Input: the package and version filters, as for listDownloadableBuilds.
 * Output: VersionDTOs of versions with at least one succeeded build, newest success first.
 */
export async function listInstallableVersions(
  store: PackageReads, pkg: PackageName, filters: VersionFilter[],
): Promise<VersionDTO[]> {
  const versions = await store.listVersionsWithSuccess(pkg, filters);
  return versions.map(toVersionDTO);
}
