// The ports the core talks through. Each has one adapter per backend under functions/adapters/.
import type { Readable } from 'node:stream';
import type {
  Build, BuildStatus, BuildView, Erts, PackageName, Repository, Retirement, Version, VersionFilter,
} from './model.js';

/** Fields a status transition may set alongside the new status. */
export interface BuildUpdate {
  /** When the transition happened; defaults to the database's now(). Sets startedAt on starting/running, finishedAt on succeeded/failed. */
  at?: Date;
  message?: string;
  artifactKey?: string | null;
  artifactSize?: number | null;
  artifactSha256?: string | null;
  logKey?: string | null;
  commitSha?: string | null;
  builderId?: string | null;
  otpRelease?: string | null;
  /** The signed statement of a success (functions/core/signing.ts), stored in the same update that marks it succeeded. */
  signed?: StoredSignature | null;
}

export interface SearchQuery {
  /** Substring of the package name (case-insensitive). */
  name: string;
  namespace?: string;
  ref?: string;
  erlVersion?: string;
  limit: number;
}

export interface VersionWithSuccess {
  versionId: number;
  ref: string;
  erlVersion: string;
}

// --- the Store, in the slices the use cases ask for ---
// Each use case names the slice it uses; the Store is all of them (one adapter, three SQL drivers).

/** What a build request writes, inside one transaction (request-builds.ts). */
export interface BuildRequestWrites {
  /** Inserts or returns the repository `namespace/name`; an existing one keeps its clone URL. */
  upsertRepository(input: { namespace: string; name: string; cloneUrl: string }): Promise<Repository>;
  /** Inserts or returns the version (repository, ref, erlVersion). */
  upsertVersion(input: { repositoryId: number; ref: string; erlVersion: string }): Promise<Version>;
  /** Inserts a `queued` build of a version; `notify` (default false) asks for a result email, to `notifyEmail` or else the commit's author. */
  createBuild(input: {
    versionId: number; id?: string; createdAt?: Date; notify?: boolean; notifyEmail?: string | null;
  }): Promise<Build>;
  /**
   * The build that makes a new one unnecessary ("build once"): the version's newest succeeded build,
   * else its newest queued/starting/running one; null when there is neither. With `inFlightOnly`
   * (a rebuild), successes do not count: only the newest queued/starting/running build.
   */
  findReusableBuild(versionId: number, options?: { inFlightOnly?: boolean }): Promise<Build | null>;
  /**
   * Records a GitHub delivery id; false when it was recorded before (a redelivery: queue nothing).
   * Called inside the transaction that queues the delivery's builds, so a failed request records nothing.
   */
  recordWebhookDelivery(input: { deliveryId: string; event: string }): Promise<boolean>;
  /** Stores the builds a recorded delivery queued, on the delivery and on each build (which findRecentWebhookBuild reads). */
  setWebhookDeliveryBuilds(deliveryId: string, buildIds: readonly string[]): Promise<void>;
  /** The version's newest build that a webhook delivery queued less than `withinS` seconds ago (database clock), or null. */
  findRecentWebhookBuild(versionId: number, withinS: number): Promise<Build | null>;
}

/** The builds as the pipeline moves them along (dispatch, completion, reaper, the builder health check). */
export interface BuildRecords {
  /** The build with what the pipeline needs to run it and report on it. */
  getBuildJob(id: string): Promise<BuildJobView | null>;
  /**
   * Moves a build to `to` only if its status is one of `from` (conditional, so a duplicate
   * delivery or a late worker does nothing). Returns the updated build, or null when it did not apply.
   */
  transitionBuild(id: string, from: BuildStatus[], to: BuildStatus, update?: BuildUpdate): Promise<Build | null>;
  /** Builds in `statuses` whose start (for in-flight) or creation (for queued) is older than `before`, oldest first. */
  listBuildsOlderThan(statuses: BuildStatus[], before: Date, limit: number): Promise<Build[]>;
}

/** Build requests: the job of an existing build (a rebuild), and one transaction of writes. */
export interface BuildRequestStore extends Pick<BuildRecords, 'getBuildJob'> {
  /** Runs `fn` in one transaction; what it receives sees and writes within it. */
  transaction<T>(fn: (tx: BuildRequestWrites) => Promise<T>): Promise<T>;
}

/**
 * The Store as the local build queue (the local worker; SQS stands in for it on AWS). Several workers may share
 * it: each in-flight build carries a lease (its worker's id and a heartbeat the worker renews), and only a build
 * whose lease expired is taken over by another worker.
 */
export interface LocalQueueStore extends BuildRecords {
  /**
   * Claims up to `limit` queued builds, oldest first, moving them to `starting` (UPDATE ... FOR UPDATE
   * SKIP LOCKED: concurrent workers never claim the same build), leased to `workerId` when given. Returns their ids.
   */
  claimQueuedBuilds(limit: number, workerId?: string): Promise<string[]>;
  /** Moves every `starting`/`running` build back to `queued`, whoever holds it (tests, tools; workers use leases). */
  requeueInFlightBuilds(message: string): Promise<string[]>;
  /** Renews the heartbeat of those of `buildIds` that `workerId` still holds in flight; returns those ids. */
  renewLeases(workerId: string, buildIds: readonly string[]): Promise<string[]>;
  /**
   * Takes over, for `workerId`, up to `limit` in-flight builds of other workers whose heartbeat is `leaseS` seconds
   * old or older, or that carry none (claimed before leases, or by hand); conditional, so two workers never take
   * the same build. Returns their ids.
   */
  takeOverExpiredLeases(workerId: string, leaseS: number, limit: number): Promise<string[]>;
  /**
   * Whether `workerId` holds build `id` in flight. Inside a transaction it also locks the build until the
   * transaction ends, so no other worker can take it over while its end is recorded.
   */
  holdsLease(id: string, workerId: string): Promise<boolean>;
  /** Puts those of `buildIds` that `workerId` holds in flight back in the queue, lease cleared; returns those ids. */
  requeueLeasedBuilds(workerId: string, buildIds: readonly string[], message: string): Promise<string[]>;
  /** Whether a worker other than `workerId` holds a build in flight with a heartbeat younger than `leaseS` seconds. */
  hasLiveLeasesOfOthers(workerId: string, leaseS: number): Promise<boolean>;
}

/** The package reads of the legacy API (/search, /builds, /versions, /last_builds). */
export interface PackageReads {
  /** POST /builds: succeeded builds of the package, newest first; `filters` empty = all versions, else any filter matches. */
  listSuccessfulBuilds(pkg: PackageName, filters: VersionFilter[]): Promise<BuildView[]>;
  /** POST /versions: versions with at least one succeeded build, newest success first. */
  listVersionsWithSuccess(pkg: PackageName, filters: VersionFilter[]): Promise<VersionWithSuccess[]>;
  /**
   * GET /search: one entry per (package, ref, erlVersion) whose name contains `name`:
   * its latest succeeded build, else its latest failed one; newest first. In-flight builds are not shown.
   */
  searchPackages(query: SearchQuery): Promise<BuildView[]>;
  /** GET /last_builds: the last `n` succeeded builds, one per version, newest first. */
  lastSuccessfulBuilds(n: number): Promise<BuildView[]>;
}

/** What the downloads and the build log look up (/download, /get, /download_erts, /build_log). */
export interface ArtifactReads {
  getBuild(id: string): Promise<(BuildView & Signed) | null>;
  /** POST /get: the newest succeeded build of the package matching the filter. */
  findLatestSuccessfulBuild(pkg: PackageName, filter: VersionFilter): Promise<(BuildView & Signed) | null>;
  getErts(release: string): Promise<(Erts & Signed) | null>;
}

/** The ERTS tarballs registered per OTP release. */
export interface ErtsRecords {
  /** Registers (or replaces) the ERTS tarball of an OTP release, with its signed statement when given. */
  putErts(erts: Omit<Erts, 'createdAt'> & { createdAt?: Date; signed?: StoredSignature | null }): Promise<Erts & Signed>;
  getErts(release: string): Promise<(Erts & Signed) | null>;
}

// --- retention (functions/core/retention.ts) ---

/** A build whose log or artifact the retention sweep removes: the key to delete from the blob store. */
export interface RetentionCandidate {
  buildId: string;
  key: string;
}

/**
 * What the retention sweep reads and marks. Both walks go oldest first over a partial index of what is still to do,
 * so a batch is an index range, and a marked build is never listed again.
 */
export interface RetentionRecords {
  /** Finished builds with a log that finished before `before` and whose log is not marked expired; oldest first. */
  listExpiredLogs(before: Date, limit: number): Promise<RetentionCandidate[]>;
  /** Marks those of `buildIds` whose log is not marked yet as expired now; returns those ids. */
  markLogsExpired(buildIds: readonly string[]): Promise<string[]>;
  /**
   * Successes superseded before `before` (a newer success of the version finished then) whose artifact is still
   * there, and that a newer success with its artifact still there supersedes (the current one is never listed).
   */
  listSupersededArtifacts(before: Date, limit: number): Promise<RetentionCandidate[]>;
  /** Marks those of `buildIds` whose artifact is not marked yet as removed now; returns those ids. */
  markArtifactsRemoved(buildIds: readonly string[]): Promise<string[]>;
}

// --- ownership: owner tokens, retirement, package administration (functions/core/authorization.ts, package-admin.ts) ---

/** An owner token as stored: its hash only, and the package it grants. */
export interface OwnerToken {
  id: string;
  repositoryId: number;
  label: string;
  createdAt: Date;
}

/** An owner token found by its hash, with the package it belongs to. */
export interface OwnerTokenMatch extends OwnerToken, PackageName {
  tokenSha256: string;
}

/** The owner tokens, by hash (authentication) and by package (an admin issues and revokes them). */
export interface OwnerTokenRecords {
  /** The token whose SHA-256 (lower-case hex) is `tokenSha256`, or null; a unique-index lookup. */
  findOwnerToken(tokenSha256: string): Promise<OwnerTokenMatch | null>;
  createOwnerToken(input: { id: string; repositoryId: number; tokenSha256: string; label: string }): Promise<OwnerToken>;
  /** Deletes token `id` of the repository; false when it has no such token. */
  deleteOwnerToken(repositoryId: number, id: string): Promise<boolean>;
}

/** What a deletion covers: one build, every build of one ref of a package, or a whole package. */
export type DeletionScope =
  | { kind: 'build'; buildId: string }
  | { kind: 'ref'; repositoryId: number; ref: string }
  | { kind: 'package'; repositoryId: number };

/** A build a deletion removes: its status (in-flight builds are not deleted) and its blobs. */
export interface DeletedBuild {
  id: string;
  status: BuildStatus;
  artifactKey: string | null;
  logKey: string | null;
}

/** An admin's writes to packages, inside one transaction (package-admin.ts, retirement.ts). */
export interface PackageAdminWrites {
  getRepository(pkg: PackageName): Promise<Repository | null>;
  /** The builds `scope` covers, locked until the transaction ends. */
  lockBuildsIn(scope: DeletionScope): Promise<DeletedBuild[]>;
  /**
   * Deletes what `scope` covers (rows only; the caller removes the blobs); a version losing a build gets its shown
   * build again from the others. False when the scope matched nothing (no such build, ref or package).
   */
  deleteIn(scope: DeletionScope): Promise<boolean>;
  /** Replaces the repository's clone URL. */
  setCloneUrl(repositoryId: number, cloneUrl: string): Promise<void>;
  /** Repositories whose clone URL starts with `prefix` (an admin's rare listing: may read every repository). */
  listRepositoriesCloningFrom(prefix: string): Promise<Repository[]>;
  /** Retires every version of the ref (and those added later); false when the package has no version of it. */
  retireRef(repositoryId: number, ref: string, retirement: Retirement): Promise<boolean>;
  /** Undoes a retirement; false when the package has no version of the ref. */
  unretireRef(repositoryId: number, ref: string): Promise<boolean>;
}

/** The package administration's store: a transaction of PackageAdminWrites and the owner tokens. */
export interface PackageAdminStore extends OwnerTokenRecords, Pick<PackageAdminWrites, 'getRepository' | 'listRepositoriesCloningFrom'> {
  transaction<T>(fn: (tx: PackageAdminWrites) => Promise<T>): Promise<T>;
}

// --- signatures and checksum indexes ---

/** A signed statement as stored with its build or ERTS: the canonical JSON text, the DER signature in base64. */
export interface StoredSignature {
  statement: string;
  signature: string;
}

/** A build or ERTS row with its signed statement (null for those registered before signing, or never signed). */
export interface Signed {
  signed: StoredSignature | null;
}

/** The public half of a signing key, as GET /v2/keys lists it. */
export interface PublicKey {
  keyId: string;
  /** SubjectPublicKeyInfo, PEM. */
  pem: string;
  /** The same key as a JWK (kty EC, crv P-256, x, y). */
  jwk: { kty: string; crv: string; x: string; y: string };
  /** From when statements may name it. */
  notBefore: Date;
  /** Until when (a rotated key); null for the key that signs now. */
  notAfter: Date | null;
}

/**
 * Signs statements with the service's key: ECDSA P-256 with SHA-256 (a key file locally, KMS on AWS).
 * Only the completion path signs (and the local ERTS registration).
 */
export interface Signer {
  /** The id of the key that signs now; statements name it. */
  keyId(): Promise<string>;
  /** The DER-encoded ECDSA signature of SHA-256(bytes), by the key keyId() names. */
  sign(bytes: Uint8Array): Promise<Uint8Array>;
  /** The public keys this signer knows: the current one (notAfter null) and those it rotated away from. */
  publicKeys(): Promise<PublicKey[]>;
}

/** The public keys that ever signed, with their validity (GET /v2/keys reads them; the signing path records them). */
export interface PublicKeyRecords {
  /**
   * Records keys not recorded yet (a recorded key keeps its notBefore; a notAfter given closes it), and closes every
   * open key older than `currentKeyId`'s (a rotation): old keys stay listed with the end of their validity.
   */
  recordPublicKeys(keys: readonly PublicKey[], currentKeyId: string): Promise<void>;
  /** Every recorded key, oldest first. */
  listPublicKeys(): Promise<PublicKey[]>;
}

/** One line of a release's checksum index: the latest success of one version of that release. */
export interface IndexEntry {
  namespace: string;
  name: string;
  ref: string;
  commitSha: string | null;
  builtAt: Date;
  sha256: string;
  size: number;
}

/** What regenerating the checksum indexes reads, under a lock that serializes the writers of one index. */
export interface IndexReads {
  /**
   * Takes the transaction-scoped advisory lock of index `name` (pg_advisory_xact_lock): two writers of one index
   * never interleave. Only meaningful inside transaction(); released when it ends.
   */
  lockIndex(name: string): Promise<void>;
  /** The latest success of every version built for OTP release `erlVersion`. */
  listIndexEntries(erlVersion: string): Promise<IndexEntry[]>;
  /** Every registered ERTS tarball. */
  listErts(): Promise<(Erts & Signed)[]>;
}

/** The signing path's store: keys, the index reads, and one transaction for the index writers. */
export interface IndexStore extends PublicKeyRecords, IndexReads {
  transaction<T>(fn: (tx: IndexStore) => Promise<T>): Promise<T>;
}

/** A rate limit's counter in its current fixed window (functions/core/rate-limits.ts). */
export interface RateLimitWindow {
  count: number;
  /** When the window started, by the database's clock (the one every process shares). */
  windowStart: Date;
  /** True when this call opened the window: the bucket's first count in it. */
  opened: boolean;
}

/** The rate limit counters: one row per bucket (`build:<ip>`, ...) and fixed window, shared by every process. */
export interface RateLimitCounters {
  /**
   * Adds `n` to `bucket`'s counter in the current window of `windowS` seconds, in one upsert, unless the count would
   * then pass `limit`: then nothing is added and the answer is null. Inside a transaction the row stays locked until
   * it ends, so concurrent requests of one bucket count one after another.
   */
  addToRateLimit(bucket: string, windowS: number, n: number, limit: number): Promise<RateLimitWindow | null>;
  /** `bucket`'s counter in the current window of `windowS` seconds (0 when it has none yet). */
  rateLimitCount(bucket: string, windowS: number): Promise<RateLimitWindow>;
  /** Deletes the windows that started `olderThanS` seconds ago or earlier; answers how many. */
  pruneRateLimits(olderThanS: number): Promise<number>;
}

/** A build request's store with the counters: its transactions count the new builds they queue (rate-limits.ts). */
export interface RateLimitedBuildStore extends Pick<BuildRecords, 'getBuildJob'>, RateLimitCounters {
  transaction<T>(fn: (tx: BuildRequestWrites & RateLimitCounters) => Promise<T>): Promise<T>;
}

/** What /metrics and /health ask of the database. */
export interface StoreProbes {
  /** Counts of builds per status (for /metrics). */
  countBuildsByStatus(): Promise<Record<BuildStatus, number>>;
  /** One round trip to the database (GET /health); throws when it cannot be reached. */
  ping(): Promise<void>;
}

/**
 * Metadata: repositories, versions, builds, ERTS, webhook deliveries: every slice above.
 * One SQL dialect (Postgres); drivers: pg, PGlite, RDS Data API.
 */
export interface Store
  extends BuildRequestWrites, LocalQueueStore, PackageReads, ArtifactReads, ErtsRecords, StoreProbes,
    PublicKeyRecords, IndexReads, RateLimitCounters, RetentionRecords, OwnerTokenRecords, PackageAdminWrites {
  /** The repository `namespace/name`, or null. */
  getRepository(pkg: PackageName): Promise<Repository | null>;
  /** Runs `fn` in one transaction; the Store it receives sees and writes within it. */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * A path on the service's machine with its symbolic links resolved, as far as it exists (the rest as written): how
 * a `file://` clone URL is followed to where git would read it.
 */
export type RealPath = (path: string) => string;

export type LogAttributes = Record<string, unknown>;

/**
 * Where the core and the workers report what they do and what must not fail the work (a mail not sent, a
 * hand-over that failed). functions/log.ts implements it over the process logger.
 */
export interface Log {
  info(message: string, attributes?: LogAttributes): void;
  warn(message: string, attributes?: LogAttributes): void;
  /** An Error is logged with its name, message and stack. */
  error(message: string, error?: unknown, attributes?: LogAttributes): void;
}

export interface BlobInfo {
  size: number;
  sha256?: string;
}

/** The SHA-256 of an object's stored bytes, and which stored version of the object they are. */
export interface BlobDigest {
  /** Lowercase hex, as builds.artifact_sha256 and erts.sha256 hold it. */
  sha256: string;
  size: number;
  /**
   * Names the stored bytes: it changes whenever they may have (a file's inode, size, mtime and ctime; an S3
   * object's version id or ETag). Equal versions of one key mean the same bytes.
   */
  version: string;
}

/**
 * What an endpoint answers for a download: a redirect (S3 presigned) or a stream (local files). `version` names the
 * stored bytes it delivers (as BlobDigest.version), so the caller can tell whether they are the bytes it verified.
 */
export type DownloadResponse =
  | { kind: 'redirect'; status: 302 | 303; location: string; version?: string; attestation?: Attestation }
  | {
    kind: 'stream'; body: Readable; size: number; contentType: string; filename?: string; version?: string;
    attestation?: Attestation;
  };

/** What a download answers about the bytes it delivers (X-Enot-Sha256, X-Enot-Signature, X-Enot-Statement). */
export interface Attestation {
  /** The recorded sha256, lowercase hex. */
  sha256: string;
  /** The signed statement; null for an artifact recorded before signing. */
  signed: StoredSignature | null;
}

export interface DownloadOptions {
  contentType: string;
  /** Sent as Content-Disposition: attachment; filename="...". */
  filename?: string;
  /** 302 for GET downloads, 303 for POST /get (so the client re-issues a GET without a body). */
  redirectStatus: 302 | 303;
}

/** Artifacts (`artifacts/`), ERTS tarballs (`erts/`) and build logs (`logs/`). Keys are immutable. */
export interface BlobStore {
  put(key: string, body: Buffer | Uint8Array | string, contentType: string): Promise<BlobInfo>;
  /** Uploads a file from the local filesystem (large artifacts, streamed). */
  putFile(key: string, path: string, contentType: string): Promise<BlobInfo>;
  /** The whole object, or null when absent. */
  get(key: string): Promise<Buffer | null>;
  stat(key: string): Promise<BlobInfo | null>;
  /** A response that delivers the object to an HTTP client, or null when absent. */
  download(key: string, options: DownloadOptions): Promise<DownloadResponse | null>;
  /**
   * The SHA-256 of the object as stored now, or null when absent: computed from the bytes (files), or the checksum
   * S3 verified at upload (else computed from the bytes). Costs a read of the object: callers keep what it says.
   */
  digest(key: string): Promise<BlobDigest | null>;
  /** Removes the object; idempotent (an absent key is not an error). */
  delete(key: string): Promise<void>;
}

// --- the build pipeline ---

/** Everything a builder needs to build one build; becomes the build's environment (see build-contract.ts). */
export interface BuildJob {
  buildId: string;
  namespace: string;
  name: string;
  cloneUrl: string;
  ref: string;
  erlVersion: string;
  /** The build's time limit; the builder kills it (and everything it started) after this. */
  timeoutS: number;
}

/** A build as the pipeline sees it: the build, its package and version, where to clone from, whom to tell. */
export interface BuildJobView extends BuildView {
  cloneUrl: string;
  /** Send a result email when the build ends. */
  notify: boolean;
  /** The address to send it to; null means the tagged commit's author (recorded by the build). */
  notifyEmail: string | null;
}

/** Delivers build ids to the dispatcher, at least once (SQS on AWS; locally the Store is the queue). */
export interface BuildQueue {
  enqueue(buildIds: readonly string[]): Promise<void>;
}

/**
 * Starts builds (CodeBuild on AWS, a sandboxed subprocess locally). The end of a build is reported
 * separately: an EventBridge event on AWS, the local builder's callback locally; both reach completeBuild.
 */
export interface Builder {
  /** Starts the build; returns the builder's own id for it. Throws BuilderBusyError to be retried later. */
  start(job: BuildJob): Promise<{ builderId: string }>;
  /** Resolves when the builder can build now (GET /health); throws, with a `code`, when it cannot. */
  check?(): Promise<void>;
}

/**
 * Reads the GitHub webhook's shared secret (GIT_SECRET locally, Secrets Manager on AWS); undefined when none is
 * configured, and then /callback refuses every delivery.
 */
export type SecretReader = () => Promise<string | undefined>;

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

/** Sends build-result email (SES on AWS, .eml files in the data dir locally). */
export interface Mailer {
  send(mail: Mail): Promise<void>;
}
