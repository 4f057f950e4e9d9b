// Row -> model converters. Drivers return different JS types for the same column (pg: Date and bigint-as-string,
// PGlite: Date and number, Data API JSON: strings and numbers); these make the Store return exactly the model types.
import {
  BUILD_STATUSES, type Build, type BuildStatus, type BuildView, type Erts, type Repository, type RetirementReason, type Version,
} from '#core/model.js';
import type { IndexEntry, OwnerToken, PublicKey, RateLimitWindow, Signed } from '#core/ports.js';
import type { SqlRow } from './sql-client.js';

/** "2024-01-02 03:04:05.123456" with an optional zone ("+00", "+05:30", "Z"); without one it is UTC. */
const PG_TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  if (typeof value === 'string') {
    const m = PG_TIMESTAMP.exec(value.trim());
    if (m) {
      const [, day, time, fraction = '', zone = 'Z'] = m;
      const millis = fraction ? `.${fraction.slice(1, 4).padEnd(3, '0')}` : '';
      const offset = zone.toUpperCase() === 'Z' ? 'Z' : normaliseOffset(zone);
      const date = new Date(`${day}T${time}${millis}${offset}`);
      if (!Number.isNaN(date.getTime())) return date;
    }
  }
  throw new TypeError(`Not a timestamp: ${String(value)}`);
}

function normaliseOffset(zone: string): string {
  const digits = zone.slice(1).replace(':', '');
  return `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2, 4) || '00'}`;
}

export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    if (!Number.isNaN(n)) return n;
  }
  throw new TypeError(`Not a number: ${String(value)}`);
}

export function toNumberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : toNumber(value);
}

export function toStringOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function toStatus(value: unknown): BuildStatus {
  const status = String(value);
  if (!(BUILD_STATUSES as readonly string[]).includes(status)) throw new TypeError(`Unknown build status: ${status}`);
  return status as BuildStatus;
}

export function toRepository(row: SqlRow): Repository {
  return {
    id: toNumber(row.id),
    namespace: String(row.namespace),
    name: String(row.name),
    cloneUrl: String(row.clone_url),
    createdAt: toDate(row.created_at),
  };
}

export function toVersion(row: SqlRow): Version {
  return {
    id: toNumber(row.id),
    repositoryId: toNumber(row.repository_id),
    ref: String(row.ref),
    erlVersion: String(row.erl_version),
    createdAt: toDate(row.created_at),
  };
}

export function toBuild(row: SqlRow): Build {
  const build: Build = {
    id: String(row.id),
    versionId: toNumber(row.version_id),
    status: toStatus(row.status),
    createdAt: toDate(row.created_at),
    startedAt: toDateOrNull(row.started_at),
    finishedAt: toDateOrNull(row.finished_at),
    message: String(row.message ?? ''),
    artifactKey: toStringOrNull(row.artifact_key),
    artifactSize: toNumberOrNull(row.artifact_size),
    artifactSha256: toStringOrNull(row.artifact_sha256),
    logKey: toStringOrNull(row.log_key),
    commitSha: toStringOrNull(row.commit_sha),
    builderId: toStringOrNull(row.builder_id),
    otpRelease: toStringOrNull(row.otp_release),
  };
  // The retention marks (migration 010) appear only once set, so a build nothing was removed from reads as before.
  if (row.superseded_at != null) build.supersededAt = toDate(row.superseded_at);
  if (row.log_expired_at != null) build.logExpiredAt = toDate(row.log_expired_at);
  if (row.artifact_removed_at != null) build.artifactRemovedAt = toDate(row.artifact_removed_at);
  return build;
}

export function toBuildView(row: SqlRow): BuildView & Signed {
  // Object.assign, not a spread: V8 copied the spread about forty times slower (4 µs a row), which
  // at a hundred rows per /last_builds or /search cost more than the query.
  return Object.assign(toBuild(row), {
    namespace: String(row.namespace),
    name: String(row.name),
    ref: String(row.ref),
    erlVersion: String(row.erl_version),
    signed: toSigned(row),
    // Only /search reads the retirement columns (migration 008); elsewhere the row has none.
    ...(typeof row.retired_reason === 'string' ? {
      retirement: {
        reason: row.retired_reason as RetirementReason, message: String(row.retired_message ?? ''), retiredAt: toDate(row.retired_at),
      },
    } : {}),
  });
}

export function toOwnerToken(row: SqlRow): OwnerToken {
  return { id: String(row.id), repositoryId: toNumber(row.repository_id), label: String(row.label), createdAt: toDate(row.created_at) };
}

/** The statement and signature columns (null when the row was never signed, or was read without them). */
function toSigned(row: SqlRow): Signed['signed'] {
  const statement = toStringOrNull(row.statement);
  const signature = toStringOrNull(row.signature);
  return statement !== null && signature !== null ? { statement, signature } : null;
}

export function toPublicKey(row: SqlRow): PublicKey {
  const jwk = JSON.parse(String(row.jwk)) as PublicKey['jwk'];
  return {
    keyId: String(row.key_id),
    pem: String(row.pem),
    jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
    notBefore: toDate(row.not_before),
    notAfter: toDateOrNull(row.not_after),
  };
}

export function toIndexEntry(row: SqlRow): IndexEntry {
  return {
    namespace: String(row.namespace),
    name: String(row.name),
    ref: String(row.ref),
    commitSha: toStringOrNull(row.commit_sha),
    builtAt: toDate(row.finished_at),
    sha256: String(row.artifact_sha256 ?? ''),
    size: toNumber(row.artifact_size ?? 0),
  };
}

export function toErts(row: SqlRow): Erts & Signed {
  return {
    signed: toSigned(row),
    release: String(row.release),
    ertsVersion: String(row.erts_version),
    key: String(row.key),
    size: toNumber(row.size),
    sha256: String(row.sha256),
    createdAt: toDate(row.created_at),
  };
}

export function toRateLimitWindow(row: SqlRow): RateLimitWindow {
  return { count: toNumber(row.count), windowStart: toDate(row.window_start), opened: row.opened === true || row.opened === 't' };
}
