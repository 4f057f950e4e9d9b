// Domain types shared by every layer: what the registry stores and what the API shows.

export const BUILD_STATUSES = ['queued', 'starting', 'running', 'succeeded', 'failed'] as const;
export type BuildStatus = (typeof BUILD_STATUSES)[number];

/** A GitHub repository the service builds: `namespace/name`, cloned from `cloneUrl`. */
export interface Repository {
  id: number;
  namespace: string;
  name: string;
  cloneUrl: string;
  createdAt: Date;
}

/** One (repository, git ref, OTP release): the unit a package is built for. */
export interface Version {
  id: number;
  repositoryId: number;
  ref: string;
  erlVersion: string;
  createdAt: Date;
}

/** One attempt to build a Version. Immutable once succeeded or failed. */
export interface Build {
  id: string; // UUID
  versionId: number;
  status: BuildStatus;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  message: string;
  artifactKey: string | null;
  artifactSize: number | null;
  artifactSha256: string | null;
  logKey: string | null;
  commitSha: string | null;
  builderId: string | null;
  /** The OTP release the build actually ran on (may be more precise than the requested one, e.g. "25.3.2"). */
  otpRelease: string | null;
  /** Retention (migration 010): when a newer success of the version finished; absent while none did. */
  supersededAt?: Date;
  /** When the retention sweep removed this build's log (ENOT_LOG_RETENTION_DAYS); absent while it is kept. */
  logExpiredAt?: Date;
  /** When the retention sweep removed this superseded build's artifact (ENOT_SUPERSEDED_RETENTION_DAYS). */
  artifactRemovedAt?: Date;
}

/** A build together with the package and version it belongs to: what read endpoints render. */
export interface BuildView extends Build {
  namespace: string;
  name: string;
  ref: string;
  erlVersion: string;
  /** Set when the version's ref is retired (migration 008); read by /search, absent elsewhere. */
  retirement?: Retirement;
}

/** Why a ref was retired (hex.pm's reasons). */
export const RETIREMENT_REASONS = ['other', 'invalid', 'security', 'deprecated', 'renamed'] as const;
export type RetirementReason = (typeof RETIREMENT_REASONS)[number];

/** A retired ref: still downloadable by its exact ref, left out where a client picks a version for itself. */
export interface Retirement {
  reason: RetirementReason;
  message: string;
  retiredAt: Date;
}

/** A packed ERTS for one OTP release, served by /download_erts/{release}. */
export interface Erts {
  release: string;
  ertsVersion: string;
  key: string;
  size: number;
  sha256: string;
  createdAt: Date;
}

/** A GitHub webhook delivery, recorded so a redelivery queues nothing. */
export interface WebhookDelivery {
  deliveryId: string;
  event: string;
  receivedAt: Date;
  buildIds: string[];
}

/** A filter on versions: each given field must match, an absent one matches anything. */
export interface VersionFilter {
  ref?: string;
  erlVersion?: string;
}

export interface PackageName {
  namespace: string;
  name: string;
}
