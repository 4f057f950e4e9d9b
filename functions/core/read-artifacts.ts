// Read use cases behind the downloads (/download, /get, /download_erts) and /build_log.
import { NotFoundError } from './errors.js';
import type { PackageName, VersionFilter } from './model.js';
import type { MetricsRecorder } from './metrics.js';
import type { ArtifactReads, BlobStore, DownloadResponse } from './ports.js';

export interface ArtifactDeps {
  store: ArtifactReads;
  blobs: BlobStore;
}

/** The downloads also count what they serve (Downloads, ErtsDownloads). */
export interface DownloadDeps extends ArtifactDeps {
  metrics: MetricsRecorder;
}

export const PACKAGE_CONTENT_TYPE = 'application/x-tar';

/**
 * Delivers the artifact of one build.
 * Input: a build id (already checked to be a UUID).
 * Output: a redirect or stream of the `.ep` package, or null when the build is unknown,
 * did not succeed, or its artifact is missing.
 * Primary course: look the build up, then ask the blob store for a download of its artifact;
 * one delivered counts as a Download.
 */
export async function downloadBuildArtifact(deps: DownloadDeps, buildId: string): Promise<DownloadResponse | null> {
  const build = await deps.store.getBuild(buildId);
  if (!build || build.status !== 'succeeded' || !build.artifactKey) return null;
  const download = await deps.blobs.download(build.artifactKey, {
    contentType: PACKAGE_CONTENT_TYPE,
    filename: `${build.name}.ep`,
    redirectStatus: 302,
  });
  if (download) deps.metrics.count('Downloads');
  return download;
}

/**
 * Delivers the newest package matching a request from the enot client (POST /get).
 * Input: the package and one version filter (absent fields match anything).
 * Output: a 303 redirect (so the client re-issues a GET) or a stream, or null when nothing matches.
 * One delivered counts as a Download.
 */
export async function downloadLatestPackage(
  deps: DownloadDeps, pkg: PackageName, filter: VersionFilter,
): Promise<DownloadResponse | null> {
  const build = await deps.store.findLatestSuccessfulBuild(pkg, filter);
  if (!build || !build.artifactKey) return null;
  const download = await deps.blobs.download(build.artifactKey, {
    contentType: PACKAGE_CONTENT_TYPE,
    filename: `${build.name}.ep`,
    redirectStatus: 303,
  });
  if (download) deps.metrics.count('Downloads');
  return download;
}

/**
 * Delivers the packed ERTS of an OTP release.
 * Input: an OTP release such as "25".
 * Output: a redirect or stream of `erts-<vsn>.tar`, or null when the release is unknown.
 * One delivered counts as an ErtsDownload.
 */
export async function downloadErts(deps: DownloadDeps, release: string): Promise<DownloadResponse | null> {
  const erts = await deps.store.getErts(release);
  if (!erts) return null;
  const download = await deps.blobs.download(erts.key, {
    contentType: 'application/x-tar',
    filename: `erts-${erts.ertsVersion}.tar`,
    redirectStatus: 302,
  });
  if (download) deps.metrics.count('ErtsDownloads');
  return download;
}

/**
 * Reads the full log of a build.
 * Input: a build id (already checked to be a UUID).
 * Output: the log text.
 * Errors: NotFoundError when the build is unknown or has no log yet (queued, or still running).
 */
export async function readBuildLog(deps: ArtifactDeps, buildId: string): Promise<string> {
  const build = await deps.store.getBuild(buildId);
  if (!build) throw new NotFoundError('No such build');
  const log = build.logKey ? await deps.blobs.get(build.logKey) : null;
  if (!log) throw new NotFoundError(`No log for build ${buildId} yet`);
  return log.toString('utf8');
}
