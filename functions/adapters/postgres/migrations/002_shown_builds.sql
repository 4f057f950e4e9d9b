-- The build /search shows for each version, kept on the version so a search reads versions, not builds.
-- Statements end with ";" at the end of a line so the Data API driver can send them one by one.

-- shown_build_id: the version's newest succeeded build, else its newest failed one; NULL while none has finished.
-- shown_at and shown_succeeded copy that build's finished_at and outcome, so ordering and the
-- "a success outranks a failure" rule need no builds row. SqlStore.transitionBuild keeps them current in
-- the same statement that moves the build. Builds are never deleted on their own (only with their version),
-- so ON DELETE SET NULL is a safety net, not a path the service takes.
ALTER TABLE versions
  ADD COLUMN shown_build_id uuid REFERENCES builds (id) ON DELETE SET NULL,
  ADD COLUMN shown_at timestamptz,
  ADD COLUMN shown_succeeded boolean;

-- Recomputes every version's shown build from its builds, writing only the versions that differ.
-- The migration backfills with it; a bulk load that inserts builds with plain SQL (the benchmark's seed)
-- calls it afterwards, since only transitionBuild maintains the columns row by row.
CREATE FUNCTION refresh_shown_builds() RETURNS bigint LANGUAGE sql AS $$
  WITH best AS (
    SELECT DISTINCT ON (b.version_id) b.version_id, b.id, b.finished_at, b.status = 'succeeded' AS succeeded
    FROM builds b
    WHERE b.status IN ('succeeded', 'failed')
    ORDER BY b.version_id, b.status = 'succeeded' DESC, b.finished_at DESC, b.id DESC
  ), updated AS (
    UPDATE versions v
    SET shown_build_id = best.id, shown_at = best.finished_at, shown_succeeded = best.succeeded
    FROM versions old LEFT JOIN best ON best.version_id = old.id
    WHERE v.id = old.id
      AND (old.shown_build_id, old.shown_at, old.shown_succeeded)
          IS DISTINCT FROM (best.id, best.finished_at, best.succeeded)
    RETURNING 1
  )
  SELECT count(*) FROM updated
$$;

SELECT refresh_shown_builds();

-- /search from the repositories a name matches to their shown versions, newest first, without the heap.
CREATE INDEX versions_shown_by_repository_idx ON versions (repository_id, shown_at DESC, shown_build_id DESC)
  INCLUDE (ref, erl_version) WHERE shown_build_id IS NOT NULL;
-- /search for a needle too short for trigrams ("e"): walk shown versions newest first, stop at the limit.
-- Partial on shown_at (set together with shown_build_id) so that only the search that says
-- "shown_at IS NOT NULL" can use it; SqlStore.searchPackages says why.
CREATE INDEX versions_shown_recent_idx ON versions (shown_at DESC, shown_build_id DESC)
  WHERE shown_at IS NOT NULL;
-- The foreign key's own lookups (a deleted build), which would otherwise scan versions.
CREATE INDEX versions_shown_build_idx ON versions (shown_build_id);

-- The planner's statistics on versions predate the backfill (every shown_build_id NULL); a search
-- planned on them would expect no shown versions at all.
ANALYZE versions;
