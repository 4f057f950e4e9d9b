// Build request use cases behind POST /buildAsync, POST /rebuild and POST /callback: validate, then in one
// transaction find or queue the builds, then hand the new ones to the build queue. Nothing here waits for a build.
import { displayCloneUrl, judgeCloneUrl, normalizeCloneUrl } from './clone-urls.js';
import { ConflictError, ValidationError } from './errors.js';
import { githubNameProblem } from './github-names.js';
import type { MetricsRecorder } from './metrics.js';
import type { Build, BuildStatus, PackageName, Version } from './model.js';
import { toBuildDTO, type BuildDTO } from './package-dto.js';
import type { BuildQueue, BuildRequestStore, BuildRequestWrites, Log, RealPath } from './ports.js';

/** The configuration the build requests obey (functions/config.ts provides it). */
export interface BuildRequestConfig {
  /** URL prefixes builds may clone from. */
  allowedCloneUrls: readonly string[];
  /** The OTP release of a version that names none; the runtime sets it at start. */
  defaultErlVersion?: string;
  /** The most versions one /buildAsync may name. */
  maxVersionsPerRequest: number;
}

export interface BuildRequestDeps {
  store: BuildRequestStore;
  queue: BuildQueue;
  metrics: MetricsRecorder;
  config: BuildRequestConfig;
  /** Where a failed hand-over to the queue is reported. */
  log: Log;
  /** Follows a `file://` clone URL's links on this machine; absent, file:// paths are judged as written. */
  realPath?: RealPath;
}

/** A build in a build request's answer: the BuildDTO of /builds plus where the build is. */
export interface RequestedBuildDTO extends BuildDTO {
  status: BuildStatus;
}

export interface RequestedVersionDTO {
  ref: string;
  erl_version: string;
  version_id: number;
  builds: RequestedBuildDTO[];
}

/** The answer of /buildAsync (and of /callback for a tag): the request echoed with its builds. */
export interface BuildRequestAnswer {
  full_name: string;
  /** Without protocol and `.git`, as the original echoed it. */
  clone_url: string;
  versions: RequestedVersionDTO[];
  notify_email: boolean | string;
  /** Only on /callback, when a failed build was answered instead of a new one: says so, and when a webhook may build it again. */
  message?: string;
}

export interface VersionRequest {
  ref: string;
  /** Absent: the default release. */
  erlVersion?: string;
}

export interface BuildRequest {
  pkg: PackageName;
  cloneUrl: string;
  /** Already checked one by one (ref and release patterns); duplicates are collapsed here. */
  versions: VersionRequest[];
  /** true: mail the tagged commit's author; false: no mail; a string: mail that address. Default true. */
  notifyEmail?: boolean | string;
}

/** The answer to a rebuild of an unknown build, byte for byte as the original said it. */
export const NO_SUCH_BUILD = 'Validation failed: No such build!';

export { cloneUrlProblem, displayCloneUrl, normalizeCloneUrl } from './clone-urls.js';

function fullNameOf(pkg: PackageName): string {
  return `${pkg.namespace}/${pkg.name}`;
}

/** The URL in the canonical spelling that is stored and cloned; a 400 naming the problem when it may not be cloned. */
function allowedCloneUrl(url: string, deps: Pick<BuildRequestDeps, 'config' | 'realPath'>, field = 'clone_url'): string {
  const verdict = judgeCloneUrl(url, deps.config.allowedCloneUrls, deps.realPath);
  if (!verdict.ok) throw new ValidationError(`Validation failed: ${field} ${verdict.problem}`);
  return verdict.canonical;
}

/**
 * The default release. Without one (a local service on a machine with no Erlang, and no
 * ENOT_DEFAULT_ERL_VERSION) the caller can still name the release, so it is a 400 saying so.
 */
function defaultErlVersion(config: BuildRequestConfig): string {
  if (!config.defaultErlVersion) {
    throw new ValidationError('Validation failed: erl_version is required: this service has no default OTP release');
  }
  return config.defaultErlVersion;
}

/** Defaults filled in, duplicates collapsed, first occurrence first. */
function resolveVersions(versions: readonly VersionRequest[], config: BuildRequestConfig): Required<VersionRequest>[] {
  const seen = new Set<string>();
  const resolved: Required<VersionRequest>[] = [];
  for (const v of versions) {
    const erlVersion = v.erlVersion ?? defaultErlVersion(config);
    const key = `${v.ref}\u0000${erlVersion}`;
    if (seen.has(key)) continue;
    seen.add(key);
    resolved.push({ ref: v.ref, erlVersion });
  }
  return resolved;
}

interface QueuedVersion {
  version: Version;
  build: Build;
  /** True when this request created the build (false: an existing success or in-flight build was reused). */
  created: boolean;
  /** True when `build` is a webhook's failed build of less than WEBHOOK_REBUILD_INTERVAL_S ago, answered instead of a new one. */
  heldBack?: boolean;
}

interface Notify {
  notify: boolean;
  notifyEmail: string | null;
}

function notifyOf(notifyEmail: boolean | string): Notify {
  if (typeof notifyEmail === 'string') return { notify: true, notifyEmail };
  return { notify: notifyEmail, notifyEmail: null };
}

/**
 * Inside a transaction: the repository, refused (409) when `namespace/name` is registered with another
 * clone URL. Its upsert locks the repository row until the transaction ends, so concurrent requests for
 * one package run one after another and the second sees the first one's builds.
 */
async function lockRepository(tx: BuildRequestWrites, pkg: PackageName, cloneUrl: string) {
  const repository = await tx.upsertRepository({ namespace: pkg.namespace, name: pkg.name, cloneUrl });
  if (normalizeCloneUrl(repository.cloneUrl) !== normalizeCloneUrl(cloneUrl)) {
    throw new ConflictError(
      `Repository ${fullNameOf(pkg)} is registered with clone URL ${displayCloneUrl(repository.cloneUrl)}, `
      + `not ${displayCloneUrl(cloneUrl)}; a package name cannot move to another repository`,
    );
  }
  return repository;
}

/**
 * How long a webhook's failed build of a version holds back the next one a webhook asks for. The signature covers
 * the body, not X-GitHub-Delivery, so a captured delivery replayed with fresh ids would otherwise rebuild a failed
 * tag once per request; /rebuild and /buildAsync are not held back.
 */
export const WEBHOOK_REBUILD_INTERVAL_S = 3600;

/**
 * Inside a transaction: per version, the build that makes a new one unnecessary, else a new queued one. With
 * `holdWebhookRebuilds` (a webhook), a failed build that a webhook queued less than WEBHOOK_REBUILD_INTERVAL_S ago
 * is answered instead of a new one.
 */
async function queueVersions(
  tx: BuildRequestWrites, repositoryId: number, versions: readonly Required<VersionRequest>[], notify: Notify,
  options: { holdWebhookRebuilds?: boolean } = {},
): Promise<QueuedVersion[]> {
  const queued: QueuedVersion[] = [];
  for (const v of versions) {
    const version = await tx.upsertVersion({ repositoryId, ref: v.ref, erlVersion: v.erlVersion });
    const existing = await tx.findReusableBuild(version.id);
    const recent = !existing && options.holdWebhookRebuilds
      ? await tx.findRecentWebhookBuild(version.id, WEBHOOK_REBUILD_INTERVAL_S)
      : null;
    if (existing) {
      queued.push({ version, build: existing, created: false });
    } else if (recent) {
      queued.push({ version, build: recent, created: false, heldBack: true });
    } else {
      queued.push({ version, build: await tx.createBuild({ versionId: version.id, ...notify }), created: true });
    }
  }
  return queued;
}

/**
 * After the commit: count and enqueue the builds this request created. A failed enqueue is logged, not
 * answered as a failure: the builds are stored as queued, and the reaper re-sends builds that stay
 * queued too long, while a retried request would only find them (build once) and enqueue nothing.
 */
async function handOver(deps: BuildRequestDeps, buildIds: string[]): Promise<void> {
  if (buildIds.length === 0) return;
  deps.metrics.count('BuildsQueued', buildIds.length);
  try {
    await deps.queue.enqueue(buildIds);
  } catch (error) {
    deps.log.error('enqueueing new builds failed; they stay queued until the reaper re-sends them', error, {
      build_ids: buildIds,
    });
  }
}

function createdIds(queued: readonly QueuedVersion[]): string[] {
  return queued.filter((q) => q.created).map((q) => q.build.id);
}

function toRequestedBuildDTO(build: Build, pkg: PackageName, version: { ref: string; erlVersion: string }): RequestedBuildDTO {
  const view = { ...build, namespace: pkg.namespace, name: pkg.name, ref: version.ref, erlVersion: version.erlVersion };
  return { ...toBuildDTO(view), status: build.status };
}

/** Why a webhook's build was not queued again, naming the failed build answered instead. */
function heldBackMessage(queued: readonly QueuedVersion[]): string | undefined {
  const held = queued.filter((q) => q.heldBack);
  if (held.length === 0) return undefined;
  return held.map(({ version, build }) => {
    const next = new Date(build.createdAt.getTime() + WEBHOOK_REBUILD_INTERVAL_S * 1000).toISOString();
    return `not built again: ${version.ref} (OTP ${version.erlVersion}) failed in build ${build.id}, queued by a webhook`
      + ` at ${build.createdAt.toISOString()}; a webhook builds a failed tag at most once an hour, so again from ${next}`
      + ' (POST /rebuild builds it now)';
  }).join('; ');
}

function answerOf(pkg: PackageName, cloneUrl: string, queued: readonly QueuedVersion[], notifyEmail: boolean | string): BuildRequestAnswer {
  const message = heldBackMessage(queued);
  return {
    full_name: fullNameOf(pkg),
    clone_url: displayCloneUrl(cloneUrl),
    versions: queued.map(({ version, build }) => ({
      ref: version.ref,
      erl_version: version.erlVersion,
      version_id: version.id,
      builds: [toRequestedBuildDTO(build, pkg, version)],
    })),
    notify_email: notifyEmail,
    ...(message ? { message } : {}),
  };
}

/**
 * Queues builds of a package (POST /buildAsync).
 * Input: the package, its clone URL, the versions (ref, optional release) and whom to mail.
 * Output: the request echoed with each version's id and its build (new, or the one reused).
 * Primary course: the clone URL (judged and stored in its canonical spelling, clone-urls.ts), the name against a
 * github.com URL (github-names.ts) and the number of versions are checked before anything is written; then
 * in one transaction the repository (409 if registered with another URL), each version, and per version
 * either its existing success or in-flight build (build once) or a new queued build; after the commit
 * the new builds are enqueued and counted as BuildsQueued.
 */
export async function requestBuilds(deps: BuildRequestDeps, request: BuildRequest): Promise<BuildRequestAnswer> {
  const { config } = deps;
  const cloneUrl = allowedCloneUrl(request.cloneUrl, deps);
  // A name on github.com belongs to its repository, so nobody can take gh/squat with another repository's URL.
  const nameProblem = githubNameProblem(request.pkg, cloneUrl);
  if (nameProblem) throw new ValidationError(`Validation failed: ${nameProblem}`);
  if (request.versions.length === 0) throw new ValidationError('Validation failed: versions must name at least one version');
  if (request.versions.length > config.maxVersionsPerRequest) {
    throw new ValidationError(`Validation failed: versions must hold at most ${config.maxVersionsPerRequest} entries`);
  }
  const versions = resolveVersions(request.versions, config);
  const notifyEmail = request.notifyEmail ?? true;
  const queued = await deps.store.transaction(async (tx) => {
    const repository = await lockRepository(tx, request.pkg, cloneUrl);
    return queueVersions(tx, repository.id, versions, notifyOf(notifyEmail));
  });
  await handOver(deps, createdIds(queued));
  return answerOf(request.pkg, cloneUrl, queued, notifyEmail);
}

/**
 * Queues a new build of the version an existing build built (POST /rebuild).
 * Input: a build id (any string; one that names no build is "No such build!").
 * Output: the new build, or the version's build already queued or running (never two in flight).
 * Primary course: a rebuild is queued even when the version has a success: that is its point; the old
 * builds stay as history, and the new one becomes the version's latest when it succeeds. Its result is
 * mailed to the tagged commit's author.
 */
export async function rebuild(deps: BuildRequestDeps, buildId: string): Promise<RequestedBuildDTO> {
  const job = await deps.store.getBuildJob(buildId);
  if (!job) throw new ValidationError(NO_SUCH_BUILD);
  const pkg = { namespace: job.namespace, name: job.name };
  // The configuration may have narrowed since the package was first built.
  allowedCloneUrl(job.cloneUrl, deps, `the clone URL of ${fullNameOf(pkg)}`);
  const { build, created } = await deps.store.transaction(async (tx) => {
    await lockRepository(tx, pkg, job.cloneUrl);
    const inFlight = await tx.findReusableBuild(job.versionId, { inFlightOnly: true });
    if (inFlight) return { build: inFlight, created: false };
    return { build: await tx.createBuild({ versionId: job.versionId, notify: true, notifyEmail: null }), created: true };
  });
  if (created) await handOver(deps, [build.id]);
  return toRequestedBuildDTO(build, pkg, job);
}

// --- GitHub webhooks ---

/** What a delivery asks for: a tag to build, a ping, or something this service does not act on. */
export type WebhookAction =
  | { kind: 'ping' }
  | { kind: 'tag' }
  | { kind: 'ignored'; reason: string };

/**
 * Sorts a delivery by its X-GitHub-Event and, for `create`, its `ref_type`.
 * Only a created tag builds (the original also built branches and pings).
 */
export function classifyWebhook(event: string | undefined, payload: unknown): WebhookAction {
  if (!event) return { kind: 'ignored', reason: 'ignored: no X-GitHub-Event header' };
  if (event === 'ping') return { kind: 'ping' };
  if (event !== 'create') {
    return { kind: 'ignored', reason: `ignored: ${event} events are not built (only the creation of a tag is)` };
  }
  const refType = typeof payload === 'object' && payload !== null ? (payload as { ref_type?: unknown }).ref_type : undefined;
  if (refType === 'tag') return { kind: 'tag' };
  return {
    kind: 'ignored',
    reason: `ignored: create event for a ${typeof refType === 'string' ? refType : 'ref of no known type'} (only tags are built)`,
  };
}

/**
 * Answers an authenticated delivery that builds nothing (ping, other events); counted as a WebhookDelivery.
 * Output: the message for the envelope ("pong" to a ping).
 */
export function acknowledgeWebhook(deps: Pick<BuildRequestDeps, 'metrics'>, action: Exclude<WebhookAction, { kind: 'tag' }>): string {
  deps.metrics.count('WebhookDeliveries');
  return action.kind === 'ping' ? 'pong' : action.reason;
}

export interface TagCreated {
  /** X-GitHub-Delivery: the same id twice never queues twice. */
  deliveryId: string | undefined;
  pkg: PackageName;
  ref: string;
  /** repository.clone_url of the payload. */
  cloneUrl: string;
}

const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/**
 * Queues the build of a newly created tag (POST /callback, `create` with `ref_type: "tag"`).
 * Input: an authenticated delivery's id, package, tag and clone URL.
 * Output: the build request's answer (as /buildAsync), or a message when the delivery was handled before.
 * Primary course: the clone URL must be `https://github.com/<full_name>` (with or without `.git`) and
 * allowed by the configuration; in one transaction the delivery is recorded (a redelivery stops here,
 * queueing nothing), and the tag is queued for the default release like /buildAsync, mailing the
 * commit's author; the delivery keeps the ids of the builds it created. A version whose webhook build failed less
 * than WEBHOOK_REBUILD_INTERVAL_S ago is not queued again: that build is answered, and `message` says so. No git or
 * network work: the answer comes at once.
 */
export async function requestTagBuild(deps: BuildRequestDeps, tag: TagCreated): Promise<BuildRequestAnswer | string> {
  const { config } = deps;
  const deliveryId = tag.deliveryId;
  if (!deliveryId || !DELIVERY_ID.test(deliveryId)) {
    throw new ValidationError('Validation failed: the X-GitHub-Delivery header is required (1-100 of A-Z a-z 0-9 . _ : -)');
  }
  const github = `https://github.com/${fullNameOf(tag.pkg)}`;
  if (tag.cloneUrl !== github && tag.cloneUrl !== `${github}.git`) {
    throw new ValidationError(`Validation failed: repository.clone_url must be ${github} or ${github}.git`);
  }
  const cloneUrl = allowedCloneUrl(tag.cloneUrl, deps, 'repository.clone_url');
  const versions = resolveVersions([{ ref: tag.ref }], config);
  const notifyEmail = true;
  const queued = await deps.store.transaction(async (tx) => {
    if (!(await tx.recordWebhookDelivery({ deliveryId, event: 'create' }))) return null;
    const repository = await lockRepository(tx, tag.pkg, cloneUrl);
    const result = await queueVersions(tx, repository.id, versions, notifyOf(notifyEmail), { holdWebhookRebuilds: true });
    await tx.setWebhookDeliveryBuilds(deliveryId, createdIds(result));
    return result;
  });
  if (!queued) return `delivery ${deliveryId} was already handled`;
  deps.metrics.count('WebhookDeliveries');
  await handOver(deps, createdIds(queued));
  return answerOf(tag.pkg, cloneUrl, queued, notifyEmail);
}
