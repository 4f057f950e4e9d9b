// The Store port in one Postgres dialect, over any SqlClient (pg, PGlite, RDS Data API).
import { randomUUID } from 'node:crypto';
import {
  BUILD_STATUSES, type Build, type BuildStatus, type BuildView, type Erts, type PackageName, type Repository,
  type Version, type VersionFilter,
} from '#core/model.js';
import type { BuildUpdate, SearchQuery, Store, VersionWithSuccess } from '#core/ports.js';
import type { SqlClient, SqlParam } from './sql-client.js';
import { toBuild, toBuildView, toErts, toNumber, toRepository, toVersion } from './rows.js';

/** Columns of a BuildView; the query aliases builds b, versions v, repositories r. Names are unique (Data API JSON). */
const BUILD_VIEW_COLUMNS = `b.id, b.version_id, b.status, b.created_at, b.started_at, b.finished_at, b.message,
  b.artifact_key, b.artifact_size, b.artifact_sha256, b.log_key, b.commit_sha, b.builder_id, b.otp_release,
  r.namespace, r.name, v.ref, v.erl_version`;

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
    const rows = await this.client.query(
      `INSERT INTO versions (repository_id, ref, erl_version) VALUES ($1::bigint, $2::text, $3::text)
       ON CONFLICT (repository_id, ref, erl_version) DO UPDATE SET ref = EXCLUDED.ref
       RETURNING id, repository_id, ref, erl_version, created_at`,
      [input.repositoryId, input.ref, input.erlVersion],
    );
    return toVersion(rows[0]);
  }

  async createBuild(input: { versionId: number; id?: string; createdAt?: Date }): Promise<Build> {
    const rows = await this.client.query(
      `INSERT INTO builds (id, version_id, status, created_at)
       VALUES ($1::uuid, $2::bigint, 'queued', coalesce($3::timestamptz, now()))
       RETURNING *`,
      [input.id ?? randomUUID(), input.versionId, iso(input.createdAt)],
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
    const rows = await this.client.query(
      `UPDATE builds SET ${sets.join(', ')}
       WHERE id = ${idParam} AND status = ANY (string_to_array(${fromParam}, ','))
       RETURNING *`,
      p.values,
    );
    return rows.length > 0 ? toBuild(rows[0]) : null;
  }

  async putErts(erts: Omit<Erts, 'createdAt'>): Promise<Erts> {
    const rows = await this.client.query(
      `INSERT INTO erts (release, erts_version, key, size, sha256)
       VALUES ($1::text, $2::text, $3::text, $4::bigint, $5::text)
       ON CONFLICT (release) DO UPDATE SET erts_version = EXCLUDED.erts_version, key = EXCLUDED.key,
         size = EXCLUDED.size, sha256 = EXCLUDED.sha256, created_at = now()
       RETURNING *`,
      [erts.release, erts.ertsVersion, erts.key, erts.size, erts.sha256],
    );
    return toErts(rows[0]);
  }

  // --- reads ---

  async getBuild(id: string): Promise<BuildView | null> {
    if (!UUID.test(id)) return null;
    const rows = await this.client.query(
      `SELECT ${BUILD_VIEW_COLUMNS}
       FROM builds b JOIN versions v ON v.id = b.version_id JOIN repositories r ON r.id = v.repository_id
       WHERE b.id = $1::uuid`,
      [id],
    );
    return rows.length > 0 ? toBuildView(rows[0]) : null;
  }

  async findLatestSuccessfulBuild(pkg: PackageName, filter: VersionFilter): Promise<BuildView | null> {
    const builds = await this.successfulBuilds(pkg, [filter], 1);
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
       WHERE ${where}
       ORDER BY ${NEWEST_FIRST}`,
      p.values,
    );
    return rows.map((r) => ({ versionId: toNumber(r.id), ref: String(r.ref), erlVersion: String(r.erl_version) }));
  }

  async searchPackages(query: SearchQuery): Promise<BuildView[]> {
    const p = new Params();
    const conditions = [`lower(r.name) LIKE lower(${p.add(`%${escapeLike(query.name)}%`, 'text')})`];
    if (query.namespace !== undefined) conditions.push(`r.namespace = ${p.add(query.namespace, 'text')}`);
    if (query.ref !== undefined) conditions.push(`v.ref = ${p.add(query.ref, 'text')}`);
    if (query.erlVersion !== undefined) conditions.push(`v.erl_version = ${p.add(query.erlVersion, 'text')}`);
    const limit = p.add(Math.max(0, Math.floor(query.limit)), 'bigint');
    // Per version: its newest success, else its newest failure, each one probe of a partial index.
    const rows = await this.client.query(
      `SELECT ${BUILD_VIEW_COLUMNS}
       FROM repositories r
       JOIN versions v ON v.repository_id = r.id
       CROSS JOIN LATERAL (
         SELECT coalesce(
           (SELECT s.id FROM builds s WHERE s.version_id = v.id AND s.status = 'succeeded'
            ORDER BY s.finished_at DESC, s.id DESC LIMIT 1),
           (SELECT f.id FROM builds f WHERE f.version_id = v.id AND f.status = 'failed'
            ORDER BY f.finished_at DESC, f.id DESC LIMIT 1)
         ) AS build_id
       ) shown
       JOIN builds b ON b.id = shown.build_id
       WHERE ${conditions.join(' AND ')}
       ORDER BY ${NEWEST_FIRST}
       LIMIT ${limit}`,
      p.values,
    );
    return rows.map(toBuildView);
  }

  async lastSuccessfulBuilds(n: number): Promise<BuildView[]> {
    // Walks successes newest first and keeps those with no newer success of the same version,
    // so it reads about n rows instead of grouping every build.
    const rows = await this.client.query(
      `SELECT ${BUILD_VIEW_COLUMNS}
       FROM builds b
       JOIN versions v ON v.id = b.version_id
       JOIN repositories r ON r.id = v.repository_id
       WHERE b.status = 'succeeded'
         AND NOT EXISTS (
           SELECT 1 FROM builds newer
           WHERE newer.version_id = b.version_id AND newer.status = 'succeeded'
             AND (newer.finished_at > b.finished_at OR (newer.finished_at = b.finished_at AND newer.id > b.id))
         )
       ORDER BY ${NEWEST_FIRST}
       LIMIT $1::bigint`,
      [Math.max(0, Math.floor(n))],
    );
    return rows.map(toBuildView);
  }

  async getErts(release: string): Promise<Erts | null> {
    const rows = await this.client.query('SELECT * FROM erts WHERE release = $1::text', [release]);
    return rows.length > 0 ? toErts(rows[0]) : null;
  }

  async countBuildsByStatus(): Promise<Record<BuildStatus, number>> {
    const rows = await this.client.query('SELECT status, count(*) AS n FROM builds GROUP BY status');
    const counts = Object.fromEntries(BUILD_STATUSES.map((s) => [s, 0])) as Record<BuildStatus, number>;
    for (const row of rows) counts[String(row.status) as BuildStatus] = toNumber(row.n);
    return counts;
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
  private async successfulBuilds(pkg: PackageName, filters: VersionFilter[], limit?: number): Promise<BuildView[]> {
    const p = new Params();
    const where = packageWhere(p, pkg, filters);
    const rows = await this.client.query(
      `SELECT ${BUILD_VIEW_COLUMNS}
       FROM repositories r
       JOIN versions v ON v.repository_id = r.id
       JOIN builds b ON b.version_id = v.id AND b.status = 'succeeded'
       WHERE ${where}
       ORDER BY ${NEWEST_FIRST}
       ${limit === undefined ? '' : `LIMIT ${p.add(limit, 'bigint')}`}`,
      p.values,
    );
    return rows.map(toBuildView);
  }
}

/** `namespace/name` and "any filter matches" (each given field equal); an empty list or an empty filter matches all. */
function packageWhere(p: Params, pkg: PackageName, filters: VersionFilter[]): string {
  const conditions = [`r.namespace = ${p.add(pkg.namespace, 'text')}`, `r.name = ${p.add(pkg.name, 'text')}`];
  const matchesAll = filters.length === 0 || filters.some((f) => f.ref === undefined && f.erlVersion === undefined);
  if (matchesAll) return conditions.join(' AND ');
  const alternatives = filters.map((filter) => {
    const parts: string[] = [];
    if (filter.ref !== undefined) parts.push(`v.ref = ${p.add(filter.ref, 'text')}`);
    if (filter.erlVersion !== undefined) parts.push(`v.erl_version = ${p.add(filter.erlVersion, 'text')}`);
    return `(${parts.join(' AND ')})`;
  });
  conditions.push(`(${alternatives.join(' OR ')})`);
  return conditions.join(' AND ');
}
