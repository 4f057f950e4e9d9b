// The JSON shapes the read endpoints answer with, as the original enot builder printed them.
import type { BuildView } from './model.js';
import type { VersionWithSuccess } from './ports.js';

/** One entry of GET /search and GET /last_builds. */
export interface PackageDTO {
  build_id: string;
  namespace: string;
  name: string;
  success: boolean;
  /** `/download/<id>` for a success, `/build_log?build_id=<id>` for a failure. */
  path: string;
  /** `yyyy-MM-dd HH:mm`, UTC. */
  build_date: string;
  /** The ref (git tag). */
  version: string;
  erl_version: string;
  /**
   * Only on a retired ref (GET /search): why, so a reader picks another. Absent otherwise, so every answer that
   * shows no retirement keeps the original's bytes; the enot client never calls /search.
   */
  retired?: { reason: string; message: string };
}

/** One entry of POST /builds. */
export interface BuildDTO {
  build_id: string;
  result: true;
  message: string;
  artifact_path: string;
  /** Epoch milliseconds of the build's creation. */
  created_date: number;
}

/** One entry of POST /versions: the id under both spellings clients know. */
export interface VersionDTO {
  version_id: number;
  versionId: number;
  ref: string;
  erl_version: string;
}

export function downloadPath(buildId: string): string {
  return `/download/${buildId}`;
}

export function buildLogPath(buildId: string): string {
  return `/build_log?build_id=${buildId}`;
}

/** `yyyy-MM-dd HH:mm` on a 24-hour clock in UTC (the original printed a 12-hour clock without AM/PM). */
export function formatBuildDate(date: Date): string {
  return date.toISOString().slice(0, 16).replace('T', ' ');
}

export function toPackageDTO(build: BuildView): PackageDTO {
  const success = build.status === 'succeeded';
  return {
    build_id: build.id,
    namespace: build.namespace,
    name: build.name,
    success,
    path: success ? downloadPath(build.id) : buildLogPath(build.id),
    build_date: formatBuildDate(build.finishedAt ?? build.createdAt),
    version: build.ref,
    erl_version: build.erlVersion,
    ...(build.retirement ? { retired: { reason: build.retirement.reason, message: build.retirement.message } } : {}),
  };
}

export function toBuildDTO(build: BuildView): BuildDTO {
  return {
    build_id: build.id,
    result: true,
    message: build.message,
    artifact_path: downloadPath(build.id),
    created_date: build.createdAt.getTime(),
  };
}

export function toVersionDTO(version: VersionWithSuccess): VersionDTO {
  return {
    version_id: version.versionId,
    versionId: version.versionId,
    ref: version.ref,
    erl_version: version.erlVersion,
  };
}
