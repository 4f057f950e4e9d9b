// The Store port in one Postgres dialect, over any SqlClient (pg, PGlite, RDS Data API).
import { randomUUID } from 'node:crypto';
import {
  BUILD_STATUSES, type Build, type BuildStatus, type BuildView, type Erts, type PackageName, type Repository,
  type Retirement, type Version, type VersionFilter,
} from '#core/model.js';
import type {
  BuildJobView, BuildUpdate, DeletedBuild, DeletionScope, IndexEntry, OwnerToken, OwnerTokenMatch, PublicKey,
  RateLimitWindow, RetentionCandidate, SearchQuery, Signed, Store, StoredSignature, VersionWithSuccess,
} from '#core/ports.js';
import type { SqlClient, SqlParam } from './sql-client.js';
import {
  toBuild, toBuildView, toDate, toErts, toIndexEntry, toNumber, toOwnerToken, toPublicKey, toRateLimitWindow, toRepository,
  toStringOrNull, toVersion,
} from './rows.js';

/** The columns of builds the Store reads, named rather than `*` so a prepared statement survives new columns. */
const BUILD_COLUMNS = `id, version_id, status, created_at, started_at, finished_at, message,
  artifact_key, artifact_size, artifact_sha256, log_key, commit_sha, builder_id, otp_release,
  superseded_at, log_expired_at, artifact_removed_at`;

/** BUILD_COLUMNS of the builds aliased b. */
const B_COLUMNS = BUILD_COLUMNS.split(',').map((column) => `b.${column.trim()}`).join(', ');

/** Columns of a BuildView; the query aliases builds b, versions v, repositories r. Names are unique (Data API JSON). */
const BUILD_VIEW_COLUMNS = `${B_COLUMNS}, b.statement, b.signature, r.namespace, r.name, v.ref, v.erl_version`;

const ERTS_COLUMNS = 'release, erts_version, key, size, sha256, created_at, statement, signature';

const PUBLIC_KEY_COLUMNS = 'key_id, pem, jwk, not_before, not_after';

/** The start of the current fixed window of $2 seconds, by the database's clock. */
const RATE_WINDOW_START = 'to_timestamp(floor(extract(epoch FROM now()) / $2::integer) * $2::integer)';

/** The largest LIMIT a statement carries as a constant rather than a parameter (see lastSuccessfulBuilds). */
const PLANNED_LIMIT = 100;

/** Finished builds sort by finished_at (never null for them, a CHECK says so); the id breaks ties. */
const NEWEST_FIRST = 'b.finished_at DESC, b.id DESC';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The BuildUpdate fields stored as-is, with their column and SQL type. */
const UPDATABLE: { field: keyof BuildUpdate; column: string; type: string }[] = [
  { field: 'message', column: 'message', type: 'text' },
  { field: 'artifactKey', column: 'artifact_key', type: 'text' },
  { field: 'artifactSize', column: 'artifact_size', type: 'bigint' },
  { field: 'artifactSha256', column: 'artifact_sha256', type: 'text' },
  { field: 'logKey', column: 'log_key', type: 'text' },
  { field: 'commitSha', column: 'commit_sha', type: 'text' },
  { field: 'builderId', column: 'builder_id', type: 'text' },
  { field: 'otpRelease', column: 'otp_release', type: 'text' },
];

/** Collects positional parameters while a statement is assembled from fixed fragments. */
class Params {
  readonly values: SqlParam[] = [];
  /** Adds a value and returns its placeholder, cast so every driver sends it as a plain value. */
  add(value: SqlParam, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

/** A run of word characters long enough for pg_trgm to take a trigram from. */
const HAS_TRIGRAM = /[\p{L}\p{N}]{3}/u;

/** `%`, `_` and `\` match literally inside the LIKE pattern. */
function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function iso(date: Date | undefined): string | null {
  return date ? date.toISOString() : null;
}

export class SqlStore implements Store {
  /**
   * @param client the driver; exposed so tests and the deploy-time migration can reach the database.
   * @param inTransaction true for the Store handed to a transaction callback (its close() is a no-op).
   */
  constructor(readonly client: SqlClient, private readonly inTransaction = false) {}

  // --- writes ---

  async upsertRepository(input: { namespace: string; name: string; cloneUrl: string }): Promise<Repository> {
    // The no-op DO UPDATE makes RETURNING yield the existing row, whose clone URL wins.
    const rows = await this.client.query(
      `INSERT INTO repositories (namespace, name, clone_url) VALUES ($1::text, $2::text, $3::text)
       ON CONFLICT (namespace, name) DO UPDATE SET namespace = EXCLUDED.namespace
       RETURNING id, namespace, name, clone_url, created_at`,
      [input.namespace, input.name, input.cloneUrl],
    );
    return toRepository(rows[0]);
  }

  async upsertVersion(input: { repositoryId: number; ref: string; erlVersion: string }): Promise<Version> {
    // A new OTP release of a retired ref is retired too: it copies a sibling's retirement (migration 008).
    const rows = await this.client.query(
      `INSERT INTO versions (repository_id, ref, erl_version, retired_reason, retired_message, retired_at)
       SELECT $1::bigint, $2::text, $3::text, s.retired_reason, s.retired_message, s.retired_at
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (
         SELECT retired_reason, retired_message, retired_at FROM versions
         WHERE repository_id = $1::bigint AND ref = $2::text AND retired_at IS NOT NULL LIMIT 1
       ) s ON true
       ON CONFLICT (repository_id, ref, erl_version) DO UPDATE SET ref = EXCLUDED.ref
       RETURNING id, repository_id, ref, erl_version, created_at`,
      [input.repositoryId, input.ref, input.erlVersion],
    );
    return toVersion(rows[0]);
  }

  async createBuild(input: {
    versionId: number; id?: string; createdAt?: Date; notify?: boolean; notifyEmail?: string | null;
  }): Promise<Build> {
    const rows = await this.client.query(
      `INSERT INTO builds (id, version_id, status, created_at, notify, notify_email)
       VALUES ($1::uuid, $2::bigint, 'queued', coalesce($3::timestamptz, now()), $4::boolean, $5::text)
       RETURNING ${BUILD_COLUMNS}`,
      [input.id ?? randomUUID(), input.versionId, iso(input.createdAt), input.notify ?? false, input.notifyEmail ?? null],
    );
    return toBuild(rows[0]);
  }

  async transitionBuild(id: string, from: BuildStatus[], to: BuildStatus, update: BuildUpdate = {}): Promise<Build | null> {
    if (!UUID.test(id) || from.length === 0) return null;
    const p = new Params();
    const idParam = p.add(id, 'uuid');
    // The Data API sends no arrays: the allowed statuses travel as one comma-separated string.
    const fromParam = p.add(from.join(','), 'text');
    // Added only where used: pg refuses a statement that is sent a parameter it never mentions.
    const stamp = () => (update.at ? p.add(update.at.toISOString(), 'timestamptz') : 'now()');
    const sets = [`status = ${p.add(to, 'text')}`];
    if (to === 'starting' || to === 'running') sets.push(`started_at = coalesce(started_at, ${stamp()})`);
    if (to === 'succeeded' || to === 'failed') sets.push(`finished_at = ${stamp()}`);
    for (const { field, column, type } of UPDATABLE) {
      const value = update[field];
      if (value === undefined) continue;
      sets.push(`${column} = ${p.add(value as SqlParam, type)}`);
    }
    if (update.signed !== undefined) {
      sets.push(`statement = ${p.add(update.signed?.statement ?? null, 'text')}`);
      sets.push(`signature = ${p.add(update.signed?.signature ?? null, 'text')}`);
    }
    // The version's shown build (the one /search lists) moves in the same statement, so it is current
    // on every driver, the Data API included, without a transaction. Two cases:
    // - the build finished and outranks the shown one (a success outranks any failure, then the newer
    //   finish wins): it becomes the shown build. The rule is checked against the versions row as it is
    //   when the row lock is taken, so two builds of a version finishing at once still end on the better one;
    // - the build is the shown one and changed (say a failure requeued): the version's best finished build
    //   is recomputed from the others and this build's new row.
    // A success also supersedes the older successes of its version (retention, migration 010): each is marked with
    // this build's finish, once, so the retention sweep finds them by an index instead of comparing builds.
    const rows = await this.client.query(
      `WITH b AS (
         UPDATE builds SET ${sets.join(', ')}
         WHERE id = ${idParam} AND status = ANY (string_to_array(${fromParam}, ','))
         RETURNING ${BUILD_COLUMNS}
       ), shown AS (
         UPDATE versions v
         SET shown_build_id = CASE WHEN v.shown_build_id = b.id THEN best.id ELSE b.id END,
             shown_at = CASE WHEN v.shown_build_id = b.id THEN best.finished_at ELSE b.finished_at END,
             shown_succeeded = CASE WHEN v.shown_build_id = b.id THEN best.succeeded ELSE b.status = 'succeeded' END
         FROM b
         LEFT JOIN LATERAL (
           SELECT c.id, c.finished_at, c.status = 'succeeded' AS succeeded
           FROM (
             SELECT b.id, b.finished_at, b.status
             UNION ALL
             (SELECT o.id, o.finished_at, o.status FROM builds o
              WHERE o.version_id = b.version_id AND o.status = 'succeeded' AND o.id <> b.id
              ORDER BY o.finished_at DESC, o.id DESC LIMIT 1)
             UNION ALL
             (SELECT o.id, o.finished_at, o.status FROM builds o
              WHERE o.version_id = b.version_id AND o.status = 'failed' AND o.id <> b.id
              ORDER BY o.finished_at DESC, o.id DESC LIMIT 1)
           ) c
           WHERE c.status IN ('succeeded', 'failed')
           ORDER BY c.status = 'succeeded' DESC, c.finished_at DESC, c.id DESC
           LIMIT 1
         ) best ON true
         WHERE v.id = b.version_id
           AND (
             (v.shown_build_id = b.id
              AND (v.shown_build_id, v.shown_at, v.shown_succeeded)
                  IS DISTINCT FROM (best.id, best.finished_at, best.succeeded))
             OR (v.shown_build_id IS DISTINCT FROM b.id
                 AND b.status IN ('succeeded', 'failed')
                 AND (v.shown_build_id IS NULL
                      OR (b.status = 'succeeded' AND NOT v.shown_succeeded)
                      OR ((b.status = 'succeeded') = v.shown_succeeded
                          AND (b.finished_at, b.id) > (v.shown_at, v.shown_build_id))))
           )
       ), superseded AS (
         UPDATE builds o SET superseded_at = b.finished_at
         FROM b
         WHERE b.status = 'succeeded' AND o.version_id = b.version_id AND o.status = 'succeeded' AND o.id <> b.id
           AND o.superseded_at IS NULL AND (o.finished_at, o.id) < (b.finished_at, b.id)
       )
       SELECT ${BUILD_COLUMNS} FROM b`,
      p.values,
    );
    return rows.length > 0 ? toBuild(rows[0]) : null;
  }

  async putErts(erts: Omit<Erts, 'createdAt'> & { createdAt?: Date; signed?: StoredSignature | null }): Promise<Erts & Signed> {
    const rows = await this.client.query(
      `INSERT INTO erts (release, erts_version, key, size, sha256, statement, signature, created_at)
       VALUES ($1::text, $2::text, $3::text, $4::bigint, $5::text, $6::text, $7::text, coalesce($8::timestamptz, now()))
       ON CONFLICT (release) DO UPDATE SET erts_version = EXCLUDED.erts_version, key = EXCLUDED.key,
         size = EXCLUDED.size, sha256 = EXCLUDED.sha256, created_at = EXCLUDED.created_at,
         statement = EXCLUDED.statement, signature = EXCLUDED.signature
       RETURNING ${ERTS_COLUMNS}`,
      [
        erts.release, erts.ertsVersion, erts.key, erts.size, erts.sha256,
        erts.signed?.statement ?? null, erts.signed?.signature ?? null, erts.createdAt?.toISOString() ?? null,
      ],
    );
    return toErts(rows[0]);
  }

  // --- signing keys and checksum indexes ---

  async recordPublicKeys(keys: readonly PublicKey[], currentKeyId: string): Promise<void> {
    for (const key of keys) {
      // A recorded key keeps when it began; an end, once known, is kept too.
      await this.client.query(
        `INSERT INTO signing_keys (key_id, pem, jwk, not_before, not_after)
         VALUES ($1::text, $2::text, $3::text, $4::timestamptz, $5::timestamptz)
         ON CONFLICT (key_id) DO UPDATE SET not_after = coalesce(signing_keys.not_after, EXCLUDED.not_after)
         WHERE signing_keys.not_after IS NULL AND EXCLUDED.not_after IS NOT NULL`,
        [key.keyId, key.pem, JSON.stringify(key.jwk), key.notBefore.toISOString(), key.notAfter?.toISOString() ?? null],
      );
    }
    // A rotation: keys that began before the current one end where it begins. A process still signing with an
    // older key closes nothing newer than its own.
    await this.client.query(
      `UPDATE signing_keys o SET not_after = greatest(c.not_before, o.not_before)
       FROM signing_keys c
       WHERE c.key_id = $1::text AND o.key_id <> c.key_id AND o.not_after IS NULL AND o.not_before <= c.not_before`,
      [currentKeyId],
    );
  }

  async listPublicKeys(): Promise<PublicKey[]> {
    const rows = await this.client.query(`SELECT ${PUBLIC_KEY_COLUMNS} FROM signing_keys ORDER BY not_before, key_id`);
    return rows.map(toPublicKey);
  }

  async lockIndex(name: string): Promise<void> {
    // hashtext gives the lock a stable 32-bit key per index name; the prefix keeps it apart from other locks.
    await this.client.query(`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext($1::text)) l`, [`enot-index:${name}`]);
  }

  async listIndexEntries(erlVersion: string): Promise<IndexEntry[]> {
    // Each version's newest success, from the per-version partial index.
    const rows = await this.client.query(
      `SELECT r.namespace, r.name, v.ref, b.commit_sha, b.finished_at, b.artifact_sha256, b.artifact_size
       FROM versions v
       JOIN repositories r ON r.id = v.repository_id
       CROSS JOIN LATERAL (
         SELECT b.commit_sha, b.finished_at, b.artifact_sha256, b.artifact_size FROM builds b
         WHERE b.version_id = v.id AND b.status = 'succeeded'
         ORDER BY ${NEWEST_FIRST} LIMIT 1
       ) b
       WHERE v.erl_version = $1::text`,
      [erlVersion],
    );
    return rows.map(toIndexEntry);
  }

  async listErts(): Promise<(Erts & Signed)[]> {
    const rows = await this.client.query(`SELECT ${ERTS_COLUMNS} FROM erts ORDER BY release`);
    return rows.map(toErts);
  }

  async recordWebhookDelivery(input: { deliveryId: string; event: string }): Promise<boolean> {
    // A concurrent duplicate waits on the key until the first transaction ends, then finds the row.
    const rows = await this.client.query(
      `INSERT INTO webhook_deliveries (delivery_id, event) VALUES ($1::text, $2::text)
       ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id`,
      [input.deliveryId, input.event],
    );
    return rows.length > 0;
  }

  async setWebhookDeliveryBuilds(deliveryId: string, buildIds: readonly string[]): Promise<void> {
    await this.client.query(
      `UPDATE webhook_deliveries SET build_ids = string_to_array($2::text, ',') WHERE delivery_id = $1::text`,
      [deliveryId, buildIds.join(',')],
    );
    if (buildIds.length === 0) return;
    await this.client.query(
      `UPDATE builds SET webhook_delivery_id = $1::text WHERE id = ANY (string_to_array($2::text, ',')::uuid[])`,
      [deliveryId, buildIds.join(',')],
    );
  }

  async findRecentWebhookBuild(versionId: number, withinS: number): Promise<Build | null> {
    const rows = await this.client.query(
      `SELECT ${BUILD_COLUMNS} FROM builds
       WHERE version_id = $1::bigint AND webhook_delivery_id IS NOT NULL
         AND created_at > now() - make_interval(secs => $2::double precision)
       ORDER BY created_at DESC, id DESC
       LIMIT 1`,
      [versionId, withinS],
    );
    return rows.length > 0 ? toBuild(rows[0]) : null;
  }

  // --- the build queue ---

  async claimQueuedBuilds(limit: number, workerId?: string): Promise<string[]> {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    // The pick is MATERIALIZED: as a plain `id IN (subquery)` the planner may run the subquery again for
    // each row it updates, and every run skips the rows this statement already locked and takes the next
    // ones, so one call could claim far more than `limit` builds.
    const rows = await this.client.query(
      `WITH picked AS MATERIALIZED (
         SELECT id FROM builds WHERE status = 'queued'
         ORDER BY created_at, id
         LIMIT $1::bigint
         FOR UPDATE SKIP LOCKED
       )
       UPDATE builds b SET status = 'starting', started_at = now(), worker_id = $2::text,
         heartbeat_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END
       FROM picked
       WHERE b.id = picked.id AND b.status = 'queued'
       RETURNING b.id, b.created_at`,
      [n, workerId ?? null],
    );
    return rows
      .map((r) => ({ id: String(r.id), at: toDate(r.created_at).getTime() }))
      .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1))
      .map((r) => r.id);
  }

  async requeueInFlightBuilds(message: string): Promise<string[]> {
    const rows = await this.client.query(
      `UPDATE builds SET status = 'queued', started_at = NULL, builder_id = NULL, worker_id = NULL, heartbeat_at = NULL,
         message = $1::text
       WHERE status IN ('starting', 'running')
       RETURNING id`,
      [message],
    );
    return rows.map((r) => String(r.id));
  }

  // --- leases: several local workers on one database (migration 005) ---

  async renewLeases(workerId: string, buildIds: readonly string[]): Promise<string[]> {
    const ids = buildIds.filter((id) => UUID.test(id));
    if (ids.length === 0) return [];
    const rows = await this.client.query(
      `UPDATE builds SET heartbeat_at = now()
       WHERE id = ANY (string_to_array($2::text, ',')::uuid[]) AND worker_id = $1::text
         AND status IN ('starting', 'running')
       RETURNING id`,
      [workerId, ids.join(',')],
    );
    return rows.map((r) => String(r.id));
  }

  async takeOverExpiredLeases(workerId: string, leaseS: number, limit: number): Promise<string[]> {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    // The condition is checked again on the locked row: a heartbeat renewed meanwhile keeps the build with its
    // worker, and SKIP LOCKED leaves a build another worker is taking (or recording) to that worker. MATERIALIZED
    // for the reason given in claimQueuedBuilds.
    const expired = `status IN ('starting', 'running') AND worker_id IS DISTINCT FROM $1::text
         AND (heartbeat_at IS NULL OR heartbeat_at <= now() - $2::double precision * interval '1 second')`;
    const rows = await this.client.query(
      `WITH picked AS MATERIALIZED (
         SELECT id FROM builds WHERE ${expired}
         ORDER BY heartbeat_at NULLS FIRST, id
         LIMIT $3::bigint
         FOR UPDATE SKIP LOCKED
       )
       UPDATE builds b SET worker_id = $1::text, heartbeat_at = now()
       FROM picked
       WHERE b.id = picked.id AND ${expired}
       RETURNING b.id`,
      [workerId, Math.max(0, leaseS), n],
    );
    return rows.map((r) => String(r.id));
  }

  async holdsLease(id: string, workerId: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    const rows = await this.client.query(
      `SELECT id FROM builds
       WHERE id = $1::uuid AND worker_id = $2::text AND status IN ('starting', 'running')
       FOR UPDATE`,
      [id, workerId],
    );
    return rows.length > 0;
  }

  async requeueLeasedBuilds(workerId: string, buildIds: readonly string[], message: string): Promise<string[]> {
    const ids = buildIds.filter((id) => UUID.test(id));
    if (ids.length === 0) return [];
    // In flight, a build is never a version's shown build, so the versions row needs no update (unlike transitionBuild).
    const rows = await this.client.query(
      `UPDATE builds SET status = 'queued', started_at = NULL, builder_id = NULL, worker_id = NULL, heartbeat_at = NULL,
         message = $3::text
       WHERE id = ANY (string_to_array($2::text, ',')::uuid[]) AND worker_id = $1::text
         AND status IN ('starting', 'running')
       RETURNING id`,
      [workerId, ids.join(','), message],
    );
    return rows.map((r) => String(r.id));
  }

  async hasLiveLeasesOfOthers(workerId: string, leaseS: number): Promise<boolean> {
    const rows = await this.client.query(
      `SELECT 1 AS live FROM builds
       WHERE status IN ('starting', 'running') AND worker_id IS DISTINCT FROM $1::text
         AND heartbeat_at > now() - $2::double precision * interval '1 second'
       LIMIT 1`,
      [workerId, Math.max(0, leaseS)],
    );
    return rows.length > 0;
  }

  async listBuildsOlderThan(statuses: BuildStatus[], before: Date, limit: number): Promise<Build[]> {
    const inFlight = statuses.filter((s) => s === 'starting' || s === 'running');
    const queued = statuses.includes('queued');
    const n = Math.max(0, Math.floor(limit));
    const parts: string[] = [];
    // Two fixed statements' worth of conditions, each matching one partial or status index.
    if (inFlight.length > 0) {
      parts.push(`(SELECT ${BUILD_COLUMNS}, started_at AS since FROM builds
        WHERE status IN ('starting', 'running') AND status = ANY (string_to_array($3::text, ','))
          AND started_at < $1::timestamptz
        ORDER BY started_at LIMIT $2::bigint)`);
    }
    if (queued) {
      parts.push(`(SELECT ${BUILD_COLUMNS}, created_at AS since FROM builds
        WHERE status = 'queued' AND created_at < $1::timestamptz
        ORDER BY created_at LIMIT $2::bigint)`);
    }
    if (parts.length === 0 || n === 0) return [];
    const rows = await this.client.query(
      `SELECT * FROM (${parts.join(' UNION ALL ')}) stuck ORDER BY since, id LIMIT $2::bigint`,
      inFlight.length > 0 ? [before.toISOString(), n, inFlight.join(',')] : [before.toISOString(), n],
    );
    return rows.map(toBuild);
  }

  // --- reads ---

  async getBuildJob(id: string): Promise<BuildJobView | null> {
    if (!UUID.test(id)) return null;
    const rows = await this.client.query(
      `SELECT ${BUILD_VIEW_COLUMNS}, r.clone_url, b.notify, b.notify_email
       FROM builds b JOIN versions v ON v.id = b.version_id JOIN repositories r ON r.id = v.repository_id
       WHERE b.id = $1::uuid`,
      [id],
    );
    if (rows.length === 0) return null;
    const row = rows[0];
    return Object.assign(toBuildView(row), {
      cloneUrl: String(row.clone_url),
      notify: row.notify === true || row.notify === 't',
      notifyEmail: toStringOrNull(row.notify_email),
    });
  }

  async findReusableBuild(versionId: number, options: { inFlightOnly?: boolean } = {}): Promise<Build | null> {
    // A success wins over an in-flight build; among either, the newest. Two fixed texts, so each stays prepared.
    const statuses = options.inFlightOnly
      ? `('queued', 'starting', 'running')`
      : `('succeeded', 'queued', 'starting', 'running')`;
    const rows = await this.client.query(
      `SELECT ${BUILD_COLUMNS} FROM builds
       WHERE version_id = $1::bigint AND status IN ${statuses}
       ORDER BY status = 'succeeded' DESC, created_at DESC, id DESC
       LIMIT 1`,
      [versionId],
    );
    return rows.length > 0 ? toBuild(rows[0]) : null;
  }

  async getRepository(pkg: PackageName): Promise<Repository | null> {
    const rows = await this.client.query(
      `SELECT id, namespace, name, clone_url, created_at FROM repositories WHERE namespace = $1::text AND name = $2::text`,
      [pkg.namespace, pkg.name],
    );
    return rows.length > 0 ? toRepository(rows[0]) : null;
  }

  async getBuild(id: string): Promise<(BuildView & Signed) | null> {
    if (!UUID.test(id)) return null;
    const rows = await this.client.query(
      `SELECT ${BUILD_VIEW_COLUMNS}
       FROM builds b JOIN versions v ON v.id = b.version_id JOIN repositories r ON r.id = v.repository_id
       WHERE b.id = $1::uuid`,
      [id],
    );
    return rows.length > 0 ? toBuildView(rows[0]) : null;
  }

  async findLatestSuccessfulBuild(pkg: PackageName, filter: VersionFilter): Promise<(BuildView & Signed) | null> {
    // Without a ref the client asks for the newest: a retired ref is not picked. Asked by its ref, it is served.
    const builds = await this.successfulBuilds(pkg, [filter], 1, filter.ref === undefined);
    return builds[0] ?? null;
  }

  listSuccessfulBuilds(pkg: PackageName, filters: VersionFilter[]): Promise<BuildView[]> {
    return this.successfulBuilds(pkg, filters);
  }

  async listVersionsWithSuccess(pkg: PackageName, filters: VersionFilter[]): Promise<VersionWithSuccess[]> {
    const p = new Params();
    const where = packageWhere(p, pkg, filters);
    // Each version's newest success comes from the per-version partial index, one probe per version.
    const rows = await this.client.query(
      `SELECT v.id, v.ref, v.erl_version
       FROM repositories r
       JOIN versions v ON v.repository_id = r.id
       CROSS JOIN LATERAL (
         SELECT b.finished_at, b.id FROM builds b
         WHERE b.version_id = v.id AND b.status = 'succeeded'
         ORDER BY ${NEWEST_FIRST} LIMIT 1
       ) b
       WHERE ${where} AND v.retired_at IS NULL
       ORDER BY ${NEWEST_FIRST}`,
      p.values,
    );
    return rows.map((r) => ({ versionId: toNumber(r.id), ref: String(r.ref), erlVersion: String(r.erl_version) }));
  }

  async searchPackages(query: SearchQuery): Promise<BuildView[]> {
    const p = new Params();
    // A needle with a trigram (three letters or digits in a row) is looked up in the trigram index, and
    // the versions of the repositories it matches are sorted: a few hundred rows for a common word.
    // A shorter one cannot narrow the index and may match most names; its search may also walk every
    // shown version newest first and stop at the limit. The walk's index is partial on shown_at, so only
    // the statement that names that condition can use it: the planner misjudges the walk as cheaper
    // for words in about 1% of the names, where it is several times slower. And only a plan made for
    // the short needle's own value knows whether it matches a few names or most, so that statement is
    // planned on every call, not prepared.
    const trigram = HAS_TRIGRAM.test(query.name);
    const conditions = [
      'v.shown_build_id IS NOT NULL',
      ...(trigram ? [] : ['v.shown_at IS NOT NULL']),
      `lower(r.name) LIKE lower(${p.add(`%${escapeLike(query.name)}%`, 'text')})`,
    ];
    if (query.namespace !== undefined) conditions.push(`r.namespace = ${p.add(query.namespace, 'text')}`);
    if (query.ref !== undefined) conditions.push(`v.ref = ${p.add(query.ref, 'text')}`);
    if (query.erlVersion !== undefined) conditions.push(`v.erl_version = ${p.add(query.erlVersion, 'text')}`);
    const limit = p.add(Math.max(0, Math.floor(query.limit)), 'bigint');
    // Each version carries its shown build (newest success, else newest failure; see transitionBuild), so
    // the matching versions are ordered and cut from versions alone, and builds is read for the rows kept.
    const rows = await this.client.query(
      `SELECT ${B_COLUMNS}, s.namespace, s.name, s.ref, s.erl_version, s.retired_reason, s.retired_message, s.retired_at
       FROM (
         SELECT r.namespace, r.name, v.ref, v.erl_version, v.shown_build_id, v.shown_at,
           v.retired_reason, v.retired_message, v.retired_at
         FROM repositories r
         JOIN versions v ON v.repository_id = r.id
         WHERE ${conditions.join(' AND ')}
         ORDER BY v.shown_at DESC, v.shown_build_id DESC
         LIMIT ${limit}
       ) s
       JOIN builds b ON b.id = s.shown_build_id
       ORDER BY s.shown_at DESC, s.shown_build_id DESC`,
      p.values,
      { reusePlan: trigram },
    );
    return rows.map(toBuildView);
  }

  async lastSuccessfulBuilds(n: number): Promise<BuildView[]> {
    const count = Math.max(0, Math.floor(n));
    // Walks successes newest first and keeps those with no newer success of the same version,
    // so it reads about n rows instead of grouping every build. A LIMIT sent as a parameter is planned
    // for an unknown row count, so Postgres would plan this statement again on every call, which costs
    // more than running it; up to PLANNED_LIMIT the statement carries that constant instead (one plan,
    // kept), and the outer LIMIT stops the walk after n rows.
    const planned = count <= PLANNED_LIMIT ? String(PLANNED_LIMIT) : '$1::bigint';
    const rows = await this.client.query(
      `SELECT last.* FROM (
         SELECT ${BUILD_VIEW_COLUMNS}
         FROM builds b
         JOIN versions v ON v.id = b.version_id
         JOIN repositories r ON r.id = v.repository_id
         WHERE b.status = 'succeeded' AND v.retired_at IS NULL
           AND NOT EXISTS (
             SELECT 1 FROM builds newer
             WHERE newer.version_id = b.version_id AND newer.status = 'succeeded'
               AND (newer.finished_at > b.finished_at OR (newer.finished_at = b.finished_at AND newer.id > b.id))
           )
         ORDER BY ${NEWEST_FIRST}
         LIMIT ${planned}
       ) last
       ORDER BY last.finished_at DESC, last.id DESC
       LIMIT $1::bigint`,
      [count],
    );
    return rows.map(toBuildView);
  }

  async getErts(release: string): Promise<(Erts & Signed) | null> {
    const rows = await this.client.query(`SELECT ${ERTS_COLUMNS} FROM erts WHERE release = $1::text`, [release]);
    return rows.length > 0 ? toErts(rows[0]) : null;
  }

  async countBuildsByStatus(): Promise<Record<BuildStatus, number>> {
    const rows = await this.client.query('SELECT status, count(*) AS n FROM builds GROUP BY status');
    const counts = Object.fromEntries(BUILD_STATUSES.map((s) => [s, 0])) as Record<BuildStatus, number>;
    for (const row of rows) counts[String(row.status) as BuildStatus] = toNumber(row.n);
    return counts;
  }

  // --- rate limits ---

  async addToRateLimit(bucket: string, windowS: number, n: number, limit: number): Promise<RateLimitWindow | null> {
    // The window is cut from the database's clock, so every process agrees on it. xmax is 0 on a row this
    // statement inserted (the window's first count), not on one it updated.
    const rows = await this.client.query(
      `INSERT INTO rate_limits AS r (bucket, window_start, count)
       SELECT $1::text, ${RATE_WINDOW_START}, $3::integer
       WHERE $3::integer <= $4::integer
       ON CONFLICT (bucket, window_start) DO UPDATE SET count = r.count + EXCLUDED.count
         WHERE r.count + EXCLUDED.count <= $4::integer
       RETURNING r.count, r.window_start, (r.xmax::text = '0') AS opened`,
      [bucket, windowS, n, limit],
    );
    return rows[0] ? toRateLimitWindow(rows[0]) : null;
  }

  async rateLimitCount(bucket: string, windowS: number): Promise<RateLimitWindow> {
    const rows = await this.client.query(
      `SELECT coalesce(max(r.count), 0) AS count, w.window_start, false AS opened
       FROM (SELECT ${RATE_WINDOW_START} AS window_start) w
       LEFT JOIN rate_limits r ON r.bucket = $1::text AND r.window_start = w.window_start
       GROUP BY w.window_start`,
      [bucket, windowS],
    );
    return toRateLimitWindow(rows[0]);
  }

  async pruneRateLimits(olderThanS: number): Promise<number> {
    const rows = await this.client.query(
      `WITH gone AS (DELETE FROM rate_limits WHERE window_start <= now() - make_interval(secs => $1::integer) RETURNING 1)
       SELECT count(*) AS n FROM gone`,
      [olderThanS],
    );
    return toNumber(rows[0]?.n ?? 0);
  }

  // --- retention (migration 010) ---

  async listExpiredLogs(before: Date, limit: number): Promise<RetentionCandidate[]> {
    const rows = await this.client.query(
      `SELECT id, log_key FROM builds
       WHERE log_key IS NOT NULL AND log_expired_at IS NULL AND status IN ('succeeded', 'failed')
         AND finished_at < $1::timestamptz
       ORDER BY finished_at, id
       LIMIT $2::bigint`,
      [before.toISOString(), Math.max(0, Math.floor(limit))],
    );
    return rows.map((r) => ({ buildId: String(r.id), key: String(r.log_key) }));
  }

  async markLogsExpired(buildIds: readonly string[]): Promise<string[]> {
    const ids = buildIds.filter((id) => UUID.test(id));
    if (ids.length === 0) return [];
    const rows = await this.client.query(
      `UPDATE builds SET log_expired_at = now()
       WHERE id = ANY (string_to_array($1::text, ',')::uuid[]) AND log_expired_at IS NULL
       RETURNING id`,
      [ids.join(',')],
    );
    return rows.map((r) => String(r.id));
  }

  async listSupersededArtifacts(before: Date, limit: number): Promise<RetentionCandidate[]> {
    // The newer success must still have its artifact: a version never loses its last downloadable build, even
    // when the build that superseded this one was deleted or removed since.
    const rows = await this.client.query(
      `SELECT b.id, b.artifact_key FROM builds b
       WHERE b.superseded_at IS NOT NULL AND b.artifact_removed_at IS NULL AND b.status = 'succeeded'
         AND b.superseded_at < $1::timestamptz
         AND EXISTS (
           SELECT 1 FROM builds n
           WHERE n.version_id = b.version_id AND n.status = 'succeeded' AND n.artifact_removed_at IS NULL
             AND (n.finished_at, n.id) > (b.finished_at, b.id)
         )
       ORDER BY b.superseded_at, b.id
       LIMIT $2::bigint`,
      [before.toISOString(), Math.max(0, Math.floor(limit))],
    );
    return rows.map((r) => ({ buildId: String(r.id), key: String(r.artifact_key) }));
  }

  async markArtifactsRemoved(buildIds: readonly string[]): Promise<string[]> {
    const ids = buildIds.filter((id) => UUID.test(id));
    if (ids.length === 0) return [];
    const rows = await this.client.query(
      `UPDATE builds SET artifact_removed_at = now()
       WHERE id = ANY (string_to_array($1::text, ',')::uuid[]) AND artifact_removed_at IS NULL AND status = 'succeeded'
       RETURNING id`,
      [ids.join(',')],
    );
    return rows.map((r) => String(r.id));
  }

  // --- ownership (migration 008): owner tokens, retirement, deletion ---

  async findOwnerToken(tokenSha256: string): Promise<OwnerTokenMatch | null> {
    const rows = await this.client.query(
      `SELECT t.id, t.repository_id, t.label, t.created_at, t.token_sha256, r.namespace, r.name
       FROM owner_tokens t JOIN repositories r ON r.id = t.repository_id
       WHERE t.token_sha256 = $1::text`,
      [tokenSha256],
    );
    if (rows.length === 0) return null;
    return Object.assign(toOwnerToken(rows[0]), {
      tokenSha256: String(rows[0].token_sha256), namespace: String(rows[0].namespace), name: String(rows[0].name),
    });
  }

  async createOwnerToken(input: { id: string; repositoryId: number; tokenSha256: string; label: string }): Promise<OwnerToken> {
    const rows = await this.client.query(
      `INSERT INTO owner_tokens (id, repository_id, token_sha256, label) VALUES ($1::uuid, $2::bigint, $3::text, $4::text)
       RETURNING id, repository_id, label, created_at`,
      [input.id, input.repositoryId, input.tokenSha256, input.label],
    );
    return toOwnerToken(rows[0]);
  }

  async deleteOwnerToken(repositoryId: number, id: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    const rows = await this.client.query(
      'DELETE FROM owner_tokens WHERE id = $1::uuid AND repository_id = $2::bigint RETURNING id',
      [id, repositoryId],
    );
    return rows.length > 0;
  }

  async retireRef(repositoryId: number, ref: string, retirement: Retirement): Promise<boolean> {
    const rows = await this.client.query(
      `UPDATE versions SET retired_reason = $3::text, retired_message = $4::text, retired_at = $5::timestamptz
       WHERE repository_id = $1::bigint AND ref = $2::text RETURNING id`,
      [repositoryId, ref, retirement.reason, retirement.message, retirement.retiredAt.toISOString()],
    );
    return rows.length > 0;
  }

  async unretireRef(repositoryId: number, ref: string): Promise<boolean> {
    const rows = await this.client.query(
      `UPDATE versions SET retired_reason = NULL, retired_message = NULL, retired_at = NULL
       WHERE repository_id = $1::bigint AND ref = $2::text RETURNING id`,
      [repositoryId, ref],
    );
    return rows.length > 0;
  }

  async lockBuildsIn(scope: DeletionScope): Promise<DeletedBuild[]> {
    const { where, params } = scopeWhere(scope);
    if (!where) return [];
    const rows = await this.client.query(
      `SELECT b.id, b.status, b.artifact_key, b.log_key FROM builds b JOIN versions v ON v.id = b.version_id
       WHERE ${where} FOR UPDATE OF b`,
      params,
    );
    return rows.map((r) => ({
      id: String(r.id), status: String(r.status) as BuildStatus,
      artifactKey: toStringOrNull(r.artifact_key), logKey: toStringOrNull(r.log_key),
    }));
  }

  async deleteIn(scope: DeletionScope): Promise<boolean> {
    if (scope.kind === 'package') {
      // Versions, builds and owner tokens go with it (ON DELETE CASCADE).
      const rows = await this.client.query('DELETE FROM repositories WHERE id = $1::bigint RETURNING id', [scope.repositoryId]);
      return rows.length > 0;
    }
    if (scope.kind === 'ref') {
      const rows = await this.client.query(
        'DELETE FROM versions WHERE repository_id = $1::bigint AND ref = $2::text RETURNING id',
        [scope.repositoryId, scope.ref],
      );
      return rows.length > 0;
    }
    if (!UUID.test(scope.buildId)) return false;
    // The version's shown build is chosen again from the builds left (the foreign key would only clear it).
    const rows = await this.client.query(
      `WITH gone AS (DELETE FROM builds WHERE id = $1::uuid RETURNING version_id)
       SELECT version_id FROM gone`,
      [scope.buildId],
    );
    if (rows.length === 0) return false;
    await this.client.query(
      `UPDATE versions v
       SET shown_build_id = best.id, shown_at = best.finished_at, shown_succeeded = best.succeeded
       FROM (SELECT $1::bigint AS id) one
       LEFT JOIN LATERAL (
         SELECT b.id, b.finished_at, b.status = 'succeeded' AS succeeded FROM builds b
         WHERE b.version_id = one.id AND b.status IN ('succeeded', 'failed')
         ORDER BY b.status = 'succeeded' DESC, b.finished_at DESC, b.id DESC LIMIT 1
       ) best ON true
       WHERE v.id = one.id`,
      [toNumber(rows[0].version_id)],
    );
    return true;
  }

  async setCloneUrl(repositoryId: number, cloneUrl: string): Promise<void> {
    await this.client.query('UPDATE repositories SET clone_url = $2::text WHERE id = $1::bigint', [repositoryId, cloneUrl]);
  }

  async listRepositoriesCloningFrom(prefix: string): Promise<Repository[]> {
    const rows = await this.client.query(
      `SELECT id, namespace, name, clone_url, created_at FROM repositories
       WHERE starts_with(clone_url, $1::text) ORDER BY namespace, name`,
      [prefix],
    );
    return rows.map(toRepository);
  }

  // --- lifecycle ---

  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    return this.client.transaction((tx) => fn(new SqlStore(tx, true)));
  }

  async ping(): Promise<void> {
    await this.client.query('SELECT 1 AS ok');
  }

  async close(): Promise<void> {
    if (!this.inTransaction) await this.client.close();
  }

  /** Succeeded builds of a package whose version matches any filter (none = all), newest first. */
  private async successfulBuilds(
    pkg: PackageName, filters: VersionFilter[], limit?: number, skipRetired = false,
  ): Promise<(BuildView & Signed)[]> {
    const p = new Params();
    const where = packageWhere(p, pkg, filters) + (skipRetired ? ' AND v.retired_at IS NULL' : '');
    const rows = await this.client.query(
      `SELECT ${BUILD_VIEW_COLUMNS}
       FROM repositories r
       JOIN versions v ON v.repository_id = r.id
       JOIN builds b ON b.version_id = v.id AND b.status = 'succeeded' AND b.artifact_removed_at IS NULL
       WHERE ${where}
       ORDER BY ${NEWEST_FIRST}
       ${limit === undefined ? '' : `LIMIT ${p.add(limit, 'bigint')}`}`,
      p.values,
    );
    return rows.map(toBuildView);
  }
}

/** The builds a deletion covers, on builds b joined to versions v. */
function scopeWhere(scope: DeletionScope): { where: string; params: SqlParam[] } {
  switch (scope.kind) {
    case 'build':
      return UUID.test(scope.buildId) ? { where: 'b.id = $1::uuid', params: [scope.buildId] } : { where: '', params: [] };
    case 'ref':
      return { where: 'v.repository_id = $1::bigint AND v.ref = $2::text', params: [scope.repositoryId, scope.ref] };
    case 'package':
      return { where: 'v.repository_id = $1::bigint', params: [scope.repositoryId] };
  }
}

/**
 * `namespace/name` and "any filter matches" (each given field equal); an empty list or an empty filter matches all.
 * One filter (POST /get) is spelled out, so the version comes from its unique key; several travel as one
 * JSON parameter, so the statement text does not depend on how many there are (a client may send 100):
 * the pg driver prepares each distinct text, and their number must stay small.
 */
function packageWhere(p: Params, pkg: PackageName, filters: VersionFilter[]): string {
  const conditions = [`r.namespace = ${p.add(pkg.namespace, 'text')}`, `r.name = ${p.add(pkg.name, 'text')}`];
  const matchesAll = filters.length === 0 || filters.some((f) => f.ref === undefined && f.erlVersion === undefined);
  if (matchesAll) return conditions.join(' AND ');
  if (filters.length === 1) {
    const [filter] = filters;
    if (filter.ref !== undefined) conditions.push(`v.ref = ${p.add(filter.ref, 'text')}`);
    if (filter.erlVersion !== undefined) conditions.push(`v.erl_version = ${p.add(filter.erlVersion, 'text')}`);
    return conditions.join(' AND ');
  }
  const list = JSON.stringify(filters.map((f) => ({ ref: f.ref ?? null, erl_version: f.erlVersion ?? null })));
  conditions.push(`EXISTS (
    SELECT 1 FROM jsonb_to_recordset(${p.add(list, 'jsonb')}) AS f (ref text, erl_version text)
    WHERE (f.ref IS NULL OR f.ref = v.ref) AND (f.erl_version IS NULL OR f.erl_version = v.erl_version))`);
  return conditions.join(' AND ');
}
