// Read use cases behind the downloads (/download, /get, /download_erts) and /build_log. Every download is checked
// against the sha256 recorded for it before it is served; a verified object is not hashed again while it is unchanged.
import { blobDigestsOf } from './blob-digests.js';
import { ChecksumMismatchError, GoneError, NotFoundError } from './errors.js';
import type { PackageName, VersionFilter } from './model.js';
import type { MetricsRecorder } from './metrics.js';
import type { ArtifactReads, BlobStore, DownloadOptions, DownloadResponse, Log, StoredSignature } from './ports.js';

export interface ArtifactDeps {
  store: ArtifactReads;
  blobs: BlobStore;
}

/** The downloads also count what they serve (Downloads, ErtsDownloads) and report what they refuse. */
export interface DownloadDeps extends ArtifactDeps {
  metrics: MetricsRecorder;
  log: Log;
}

export const PACKAGE_CONTENT_TYPE = 'application/x-tar';

/** A blob to deliver only if its bytes are the ones recorded. */
interface RecordedBlob {
  key: string;
  /** The recorded sha256 (hex); null when none was recorded, which is refused like a mismatch. */
  sha256: string | null;
  /** Names it in the answer and the log: "the stored package of build <id>". */
  subject: string;
}

// A download and a digest that name different stored versions saw the object change in between: look again, once.
const ATTEMPTS = 2;

/**
 * Delivers a blob whose stored bytes match its recorded sha256.
 * Output: the blob store's download, or null when the object is absent.
 * Errors: ChecksumMismatchError (503) when the bytes differ from the record, or no sha256 is recorded; it is counted
 * (ArtifactChecksumMismatch), logged as an error and kept for /health until the same key is served verified again.
 * Primary course: ask for the download, which names the stored version it delivers; when this process already
 * hashed that version of the key and it matched, serve it, else ask the store for the object's digest (a read of the
 * whole object, or S3's stored checksum) and keep it. The cached download of a verified object costs one map lookup
 * more; a refused one costs a digest each time, so that a repaired object is served again at once.
 */
async function deliverVerified(
  deps: DownloadDeps, blob: RecordedBlob, options: DownloadOptions,
): Promise<DownloadResponse | null> {
  const digests = blobDigestsOf(deps.blobs);
  for (let attempt = 1; ; attempt++) {
    const download = await deps.blobs.download(blob.key, options);
    if (!download) return null;
    const matches = (sha256: string) => blob.sha256 !== null && sha256 === blob.sha256.toLowerCase();
    let digest = digests.known(blob.key, download.version);
    // A known mismatch is looked at again: the object may have been repaired, and a stale copy is dropped on the way.
    if (!digest || !matches(digest.sha256)) {
      let computed;
      try {
        computed = await deps.blobs.digest(blob.key);
      } catch (error) {
        discard(download);
        throw error;
      }
      if (!computed) {
        discard(download);
        return null;
      }
      digests.remember(blob.key, computed);
      if (download.version === undefined || computed.version !== download.version) {
        discard(download);
        if (attempt < ATTEMPTS) continue;
        throw new ChecksumMismatchError(`${blob.subject} changed while it was being checked; it is not served`);
      }
      digest = computed;
    }
    if (matches(digest.sha256)) {
      digests.matchSeen(blob.key);
      return download;
    }
    discard(download);
    const problem = blob.sha256 === null ? 'has no recorded checksum' : 'does not match its checksum';
    digests.mismatchSeen({ subject: blob.subject, key: blob.key, expected: blob.sha256, actual: digest.sha256, at: new Date() });
    deps.metrics.count('ArtifactChecksumMismatch');
    deps.log.error('download refused: the stored bytes do not match the recorded sha256', undefined, {
      subject: blob.subject, key: blob.key, expectedSha256: blob.sha256, actualSha256: digest.sha256, version: digest.version,
    });
    throw new ChecksumMismatchError(`${blob.subject} ${problem}; it is not served`);
  }
}

/** The download with what it answers about its bytes: the recorded sha256 and the signed statement. */
function attested(download: DownloadResponse | null, sha256: string | null, signed: StoredSignature | null): DownloadResponse | null {
  if (!download || sha256 === null) return download;
  download.attestation = { sha256: sha256.toLowerCase(), signed };
  return download;
}

/** A download that will not be answered: its stream (and the descriptor behind it) is closed. */
function discard(download: DownloadResponse): void {
  if (download.kind === 'stream') download.body.destroy();
}

/**
 * Delivers the artifact of one build.
 * Input: a build id (already checked to be a UUID).
 * Output: a redirect or stream of the `.ep` package, or null when the build is unknown,
 * did not succeed, its artifact is missing, or retention removed it (a superseded build: /download then answers as
 * for an unknown build, which is what the legacy contract gives a client for a build it cannot have).
 * Errors: ChecksumMismatchError when the stored package is not the one recorded (deliverVerified).
 * Primary course: look the build up, then deliver its artifact verified; one delivered counts as a Download.
 */
export async function downloadBuildArtifact(deps: DownloadDeps, buildId: string): Promise<DownloadResponse | null> {
  const build = await deps.store.getBuild(buildId);
  if (!build || build.status !== 'succeeded' || !build.artifactKey || build.artifactRemovedAt) return null;
  const download = await deliverVerified(deps, {
    key: build.artifactKey, sha256: build.artifactSha256, subject: `the stored package of build ${build.id}`,
  }, { contentType: PACKAGE_CONTENT_TYPE, filename: `${build.name}.ep`, redirectStatus: 302 });
  if (download) deps.metrics.count('Downloads');
  return attested(download, build.artifactSha256, build.signed);
}

/**
 * Delivers the newest package matching a request from the enot client (POST /get).
 * Input: the package and one version filter (absent fields match anything).
 * Output: a 303 redirect (so the client re-issues a GET) or a stream, or null when nothing matches.
 * Errors: ChecksumMismatchError when the stored package is not the one recorded.
 * One delivered counts as a Download.
 */
export async function downloadLatestPackage(
  deps: DownloadDeps, pkg: PackageName, filter: VersionFilter,
): Promise<DownloadResponse | null> {
  const build = await deps.store.findLatestSuccessfulBuild(pkg, filter);
  if (!build || !build.artifactKey) return null;
  const download = await deliverVerified(deps, {
    key: build.artifactKey, sha256: build.artifactSha256, subject: `the stored package of build ${build.id}`,
  }, { contentType: PACKAGE_CONTENT_TYPE, filename: `${build.name}.ep`, redirectStatus: 303 });
  if (download) deps.metrics.count('Downloads');
  return attested(download, build.artifactSha256, build.signed);
}

/**
 * Delivers the packed ERTS of an OTP release.
 * Input: an OTP release such as "25".
 * Output: a redirect or stream of `erts-<vsn>.tar`, or null when the release is unknown.
 * Errors: ChecksumMismatchError when the stored tarball is not the one registered.
 * One delivered counts as an ErtsDownload.
 */
export async function downloadErts(deps: DownloadDeps, release: string): Promise<DownloadResponse | null> {
  const erts = await deps.store.getErts(release);
  if (!erts) return null;
  const download = await deliverVerified(deps, {
    key: erts.key, sha256: erts.sha256, subject: `the stored ERTS of OTP ${erts.release}`,
  }, { contentType: 'application/x-tar', filename: `erts-${erts.ertsVersion}.tar`, redirectStatus: 302 });
  if (download) deps.metrics.count('ErtsDownloads');
  return attested(download, erts.sha256, erts.signed);
}

/** The build log also says how long logs are kept, once one expired. */
export interface BuildLogDeps extends ArtifactDeps {
  config: { logRetentionDays: number };
}

const DAY_MS = 86_400_000;

/**
 * Reads the full log of a build.
 * Input: a build id (already checked to be a UUID).
 * Output: the log text.
 * Errors: NotFoundError when the build is unknown or has no log yet (queued, or still running); GoneError (410) when
 * retention removed it: the sweep marked it expired, or it is missing past the retention (on AWS the bucket's
 * lifecycle may expire it before the sweep marks the row).
 */
export async function readBuildLog(deps: BuildLogDeps, buildId: string, now: Date = new Date()): Promise<string> {
  const build = await deps.store.getBuild(buildId);
  if (!build) throw new NotFoundError('No such build');
  const days = deps.config.logRetentionDays;
  const expired = new GoneError(`Log expired: build logs are kept ${days} days`);
  if (build.logExpiredAt) throw expired;
  const log = build.logKey ? await deps.blobs.get(build.logKey) : null;
  if (log) return log.toString('utf8');
  if (build.logKey && build.finishedAt && now.getTime() - build.finishedAt.getTime() >= days * DAY_MS) throw expired;
  throw new NotFoundError(`No log for build ${buildId} yet`);
}
