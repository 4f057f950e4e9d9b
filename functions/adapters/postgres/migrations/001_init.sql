-- Initial schema: repositories, versions, builds, ERTS tarballs, webhook deliveries.
-- Statements end with ";" at the end of a line so the Data API driver can send them one by one.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE repositories (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  namespace text NOT NULL CHECK (namespace <> ''),
  name text NOT NULL CHECK (name <> ''),
  clone_url text NOT NULL CHECK (clone_url <> ''),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT repositories_namespace_name_key UNIQUE (namespace, name)
);

-- /search matches a substring of the name, case-insensitively: LIKE on lower(name) through trigrams.
-- Repositories are added rarely, so no pending list: the index is always complete and its cost estimate honest.
CREATE INDEX repositories_name_trgm_idx ON repositories USING gin (lower(name) gin_trgm_ops) WITH (fastupdate = off);

CREATE TABLE versions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  ref text NOT NULL CHECK (ref <> ''),
  erl_version text NOT NULL CHECK (erl_version <> ''),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT versions_repository_ref_erl_key UNIQUE (repository_id, ref, erl_version)
);

CREATE TABLE builds (
  id uuid PRIMARY KEY,
  version_id bigint NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'starting', 'running', 'succeeded', 'failed')),
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  message text NOT NULL DEFAULT '',
  artifact_key text,
  artifact_size bigint CHECK (artifact_size >= 0),
  artifact_sha256 text,
  log_key text,
  commit_sha text,
  builder_id text,
  otp_release text,
  -- A success is only worth listing if there is something to download.
  CONSTRAINT builds_succeeded_has_artifact CHECK (status <> 'succeeded' OR artifact_key IS NOT NULL),
  -- Finished builds are ordered by finished_at, so it must be there.
  CONSTRAINT builds_finished_has_finished_at CHECK (status NOT IN ('succeeded', 'failed') OR finished_at IS NOT NULL)
);

-- Every build of a version (foreign-key cascades, rebuild checks).
CREATE INDEX builds_version_idx ON builds (version_id);
-- Newest success of a version (/get, /builds, /versions, /search, /last_builds' per-version check).
CREATE INDEX builds_succeeded_by_version_idx ON builds (version_id, finished_at DESC, id DESC)
  WHERE status = 'succeeded';
-- Newest failure of a version (/search shows it when the version never succeeded).
CREATE INDEX builds_failed_by_version_idx ON builds (version_id, finished_at DESC, id DESC)
  WHERE status = 'failed';
-- Walked newest first by /last_builds.
CREATE INDEX builds_succeeded_recent_idx ON builds (finished_at DESC, id DESC)
  WHERE status = 'succeeded';
-- The queue and the reaper: builds in a status, oldest first.
CREATE INDEX builds_status_created_idx ON builds (status, created_at);

CREATE TABLE erts (
  release text PRIMARY KEY CHECK (release <> ''),
  erts_version text NOT NULL,
  key text NOT NULL,
  size bigint NOT NULL CHECK (size >= 0),
  sha256 text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- text[] rather than uuid[]: the Data API cannot send array parameters, so ids arrive as one string.
CREATE TABLE webhook_deliveries (
  delivery_id text PRIMARY KEY CHECK (delivery_id <> ''),
  event text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  build_ids text[] NOT NULL DEFAULT '{}'
);
