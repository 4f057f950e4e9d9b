// Seeds a registry-scale database set-based (INSERT ... SELECT over generate_series), grows it in steps,
// and picks the request pools (packages, refs, build ids) the load runs rotate through.
import { randomBytes } from 'node:crypto';
import type { BlobStore } from '#core/ports.js';
import type { SqlClient, SqlRow } from '#adapters/postgres/sql-client.js';
import { repositoryNames } from './names.js';

/** The mix, fixed at every scale: 10 versions per repository, 5 builds per version. */
export const VERSIONS_PER_REPOSITORY = 10;
export const BUILDS_PER_VERSION = 5;

export interface Scale {
  repositories: number;
  versions: number;
  builds: number;
}

/** The registry at `builds` builds, in the proportions (20k : 200k : 1M). */
export function scaleOf(builds: number): Scale {
  const versions = builds / BUILDS_PER_VERSION;
  const repositories = versions / VERSIONS_PER_REPOSITORY;
  if (!Number.isInteger(repositories) || repositories % 10 !== 0) {
    throw new Error(`builds must be a multiple of ${10 * VERSIONS_PER_REPOSITORY * BUILDS_PER_VERSION}`);
  }
  return { repositories, versions, builds };
}

export interface SeedStep {
  scale: Scale;
  /** What the step inserted, from the previous scale. */
  added: Scale;
  seconds: number;
  /** pg_database_size (Postgres) or the data directory's size (PGlite), in bytes. */
  databaseBytes?: number;
  /** What is actually in the tables afterwards, counted. */
  counted: Scale & { succeeded: number; failed: number; inFlight: number };
}

export interface SeedOptions {
  /** Settings for the loading transaction (SET LOCAL), e.g. a larger maintenance_work_mem. */
  sessionSettings?: Record<string, string>;
}

// Versions per repository and builds per version vary around the means (10 and 5), exactly on
// average over every ten consecutive ids, so each scale has exactly its row counts.
const VERSIONS_PATTERN = '[2,4,6,8,10,12,14,16,18,10]';
const BUILDS_PATTERN = '[1,2,3,4,5,5,6,7,8,9]';

/** Repositories from names.ts ($1: [{namespace, name, ord}]), created over five years. */
const INSERT_REPOSITORIES = `INSERT INTO repositories (namespace, name, clone_url, created_at)
    SELECT x.namespace, x.name, 'https://github.com/' || x.namespace || '/' || x.name,
           timestamptz '2019-01-01 00:00:00+00' + (x.ord * interval '131 minutes')
    FROM jsonb_to_recordset($1::jsonb) AS x(namespace text, name text, ord bigint)
    ORDER BY x.ord`;

/**
 * The versions of the repositories after id $1: tags built on one to four of OTP 24..27 (the newest
 * ones), `v`-prefixed refs on a third of the packages, a tag every three weeks.
 */
const INSERT_VERSIONS = `INSERT INTO versions (repository_id, ref, erl_version, created_at)
    SELECT r.id,
           CASE WHEN r.id % 3 = 0 THEN 'v' ELSE '' END || (q.n / 10) || '.' || (q.n % 10) || '.' || ((r.id + q.n) % 4),
           (28 - p.otps + k % p.otps)::text,
           r.created_at + q.n * interval '21 days' + (k % p.otps) * interval '1 hour'
    FROM repositories r
    CROSS JOIN LATERAL (
      SELECT 1 + r.id % 4 AS otps, ('${VERSIONS_PATTERN}'::jsonb ->> (r.id % 10)::int)::int AS count
    ) p
    CROSS JOIN LATERAL generate_series(0, p.count - 1) AS k
    CROSS JOIN LATERAL (SELECT k / p.otps AS n) q
    WHERE r.id > $1::bigint
    ORDER BY r.id, k`;

/**
 * The builds of the versions after id $1: rebuilds over time on newer OTP patch releases, about 10%
 * failed (so a version's newest build is sometimes a failure, and some versions never succeeded), one
 * in 5000 versions with a build still running; artifact, log, checksum and commit of each. Inserted in
 * creation order, as a live registry writes them. Ids are md5-derived, so every run has the same ones.
 */
const INSERT_BUILDS = `INSERT INTO builds (id, version_id, status, created_at, started_at, finished_at, message,
                              artifact_key, artifact_size, artifact_sha256, log_key, commit_sha, builder_id, otp_release)
    SELECT b.id, b.version_id, s.status, b.created_at,
           b.created_at + interval '4 seconds',
           CASE WHEN s.status IN ('succeeded', 'failed') THEN b.created_at + (40 + b.roll * 7) * interval '1 second' END,
           CASE s.status WHEN 'succeeded' THEN 'Build succeeded'
                         WHEN 'failed' THEN 'Compile error: src/' || b.module || '.erl:' || (10 + b.roll) || ': syntax error before: ''end'''
                         ELSE '' END,
           CASE WHEN s.status = 'succeeded' THEN 'artifacts/' || b.id || '.ep' END,
           CASE WHEN s.status = 'succeeded' THEN 20000 + b.roll * 977 END,
           CASE WHEN s.status = 'succeeded' THEN md5(b.id::text) || md5(b.version_id::text) END,
           CASE WHEN s.status IN ('succeeded', 'failed') THEN 'logs/' || b.id || '.log' END,
           md5('commit/' || b.version_id) || substr(md5(b.id::text), 1, 8),
           'enot-builder:' || b.id,
           b.erl_version || '.' || (b.attempt % 3)
    FROM (
      SELECT md5('enot-bench/' || v.id || '/' || j)::uuid AS id, v.id AS version_id, v.erl_version, j AS attempt,
             c.count,
             v.created_at + (j - 1) * interval '17 days' + ((v.id * 7 + j * 13) % 3600) * interval '1 second' AS created_at,
             (v.id * 37 + j * 101) % 100 AS roll,
             'mod' || (v.id % 50) AS module
      FROM versions v
      CROSS JOIN LATERAL (SELECT ('${BUILDS_PATTERN}'::jsonb ->> (v.id % 10)::int)::int AS count) c
      CROSS JOIN LATERAL generate_series(1, c.count) AS j
      WHERE v.id > $1::bigint
    ) b
    CROSS JOIN LATERAL (
      SELECT CASE WHEN b.attempt = b.count AND b.version_id % 5000 = 0 THEN 'running'
                  WHEN b.roll < 10 THEN 'failed'
                  ELSE 'succeeded' END AS status
    ) s
    ORDER BY b.created_at`;

async function one(client: SqlClient, sql: string, params: (string | number)[] = []): Promise<SqlRow> {
  const rows = await client.query(sql, params);
  return rows[0];
}

const num = (v: unknown) => Number(v);

export async function countRows(client: SqlClient): Promise<SeedStep['counted']> {
  const row = await one(client, `SELECT
      (SELECT count(*) FROM repositories) AS repositories,
      (SELECT count(*) FROM versions) AS versions,
      (SELECT count(*) FROM builds) AS builds,
      (SELECT count(*) FROM builds WHERE status = 'succeeded') AS succeeded,
      (SELECT count(*) FROM builds WHERE status = 'failed') AS failed,
      (SELECT count(*) FROM builds WHERE status NOT IN ('succeeded', 'failed')) AS in_flight`);
  return {
    repositories: num(row.repositories), versions: num(row.versions), builds: num(row.builds),
    succeeded: num(row.succeeded), failed: num(row.failed), inFlight: num(row.in_flight),
  };
}

/**
 * Grows the database from its current content to `target`, inserting only what is missing, in one
 * transaction; then VACUUM ANALYZE so the planner and the visibility map see the new rows.
 */
export async function growTo(client: SqlClient, target: Scale, options: SeedOptions = {}): Promise<Omit<SeedStep, 'databaseBytes'>> {
  const started = performance.now();
  const before = await countRows(client);
  if (before.repositories > target.repositories) throw new Error('the database is already larger than the target');
  const names = repositoryNames(target.repositories).slice(before.repositories)
    .map((r, i) => ({ ...r, ord: before.repositories + i }));
  await client.transaction(async (tx) => {
    for (const [key, value] of Object.entries(options.sessionSettings ?? {})) {
      await tx.query(`SELECT set_config($1::text, $2::text, true)`, [key, value]);
    }
    const lastRepository = num((await one(tx, 'SELECT coalesce(max(id), 0) AS id FROM repositories')).id);
    const lastVersion = num((await one(tx, 'SELECT coalesce(max(id), 0) AS id FROM versions')).id);
    await tx.query(INSERT_REPOSITORIES, [JSON.stringify(names)]);
    await tx.query(INSERT_VERSIONS, [lastRepository]);
    // Into the migration's indexes as they are: dropping and rebuilding them around the load saved
    // only about a tenth of the time at 1M builds.
    await tx.query(INSERT_BUILDS, [lastVersion]);
    // Builds written behind the Store's back: recompute what /search shows for each version, as migration 002 does.
    await tx.query('SELECT refresh_shown_builds()');
  });
  // Every OTP release has an ERTS, so /download_erts has something to find.
  await client.query(
    `INSERT INTO erts (release, erts_version, key, size, sha256)
     SELECT r::text, (r - 12)::text || '.0', 'erts/erts-' || r || '.tar', 30000000, md5(r::text) || md5(r::text)
     FROM generate_series(24, 27) AS r
     ON CONFLICT (release) DO NOTHING`,
  );
  await client.query('VACUUM (ANALYZE) repositories, versions, builds');
  // Written out now, so the load runs that follow do not pay for flushing the seed's dirty pages.
  await client.query('CHECKPOINT').catch(() => {});
  const counted = await countRows(client);
  if (counted.repositories !== target.repositories || counted.versions !== target.versions || counted.builds !== target.builds) {
    throw new Error(`seeded ${JSON.stringify(counted)}, wanted ${JSON.stringify(target)}`);
  }
  return {
    scale: target,
    added: {
      repositories: target.repositories - before.repositories,
      versions: target.versions - before.versions,
      builds: target.builds - before.builds,
    },
    seconds: (performance.now() - started) / 1000,
    counted,
  };
}

/** The request targets a load run rotates through, drawn uniformly from the whole database. */
export interface Pools {
  /** Versions whose newest successful build has an artifact file: POST /get hits. */
  hits: { fullName: string; ref: string; erlVersion: string; buildId: string }[];
  /** Packages for POST /versions (every version with a success). */
  packages: string[];
  /** Existing packages asked for a ref they do not have: POST /get misses. */
  misses: { fullName: string; ref: string }[];
  /** Exact package names for GET /search. */
  exactNames: string[];
  /** Name substrings (words package names are made of) for GET /search. */
  substrings: string[];
  /** Builds with an artifact file: GET /download/{id}. */
  downloads: string[];
}

/** Draws `size` pool entries with a deterministic stride over the version ids, and writes their artifacts. */
export async function drawPools(
  client: SqlClient, blobs: BlobStore, size: number, artifactBytes: number, substrings: readonly string[],
): Promise<Pools> {
  const versions = num((await one(client, 'SELECT count(*) AS n FROM versions')).n);
  const stride = Math.max(1, Math.floor(versions / (size * 2)));
  // Twice as many candidates as needed: some versions never succeeded.
  const rows = await client.query(
    `SELECT r.namespace || '/' || r.name AS full_name, v.ref, v.erl_version, s.id AS build_id
     FROM generate_series(1, $1::int) AS g
     JOIN versions v ON v.id = 1 + ((g * $2::bigint + 7) % $3::bigint)
     JOIN repositories r ON r.id = v.repository_id
     CROSS JOIN LATERAL (
       SELECT b.id FROM builds b WHERE b.version_id = v.id AND b.status = 'succeeded'
       ORDER BY b.finished_at DESC, b.id DESC LIMIT 1
     ) s
     ORDER BY g
     LIMIT $4::int`,
    [size * 2, stride, versions, size],
  );
  const hits = rows.map((r) => ({
    fullName: String(r.full_name), ref: String(r.ref), erlVersion: String(r.erl_version), buildId: String(r.build_id),
  }));
  if (hits.length < size) throw new Error(`only ${hits.length} of ${size} pool versions have a successful build`);
  // Random bytes: an .ep is a compressed tar, so nothing downstream could shrink it.
  for (const hit of hits) {
    const { sha256 } = await blobs.put(`artifacts/${hit.buildId}.ep`, randomBytes(artifactBytes), 'application/x-tar');
    // Downloads are checked against the recorded sha256: the seeded one is made up, so record the real one.
    await client.query('UPDATE builds SET artifact_sha256 = $1 WHERE id = $2::uuid', [sha256 ?? null, hit.buildId]);
  }
  return {
    hits,
    packages: [...new Set(hits.map((h) => h.fullName))],
    misses: hits.map((h) => ({ fullName: h.fullName, ref: '99.99.99' })),
    exactNames: [...new Set(hits.map((h) => h.fullName.split('/')[1]))],
    substrings: [...substrings],
    downloads: hits.map((h) => h.buildId),
  };
}
