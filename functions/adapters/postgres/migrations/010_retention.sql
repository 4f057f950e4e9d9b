-- Retention (issue 11, item 7): build logs expire after ENOT_LOG_RETENTION_DAYS, and the artifact of a superseded
-- build (an older success of a version that succeeded again) is removed after ENOT_SUPERSEDED_RETENTION_DAYS.
-- The rows stay; these columns say what was removed and when, so /build_log can tell an expired log from a
-- missing one and /download answers a removed artifact like an unknown build.
-- Statements end with ";" at the end of a line so the Data API driver can send them one by one.

-- superseded_at: when a newer success of the same version finished (SqlStore.transitionBuild sets it in the
-- statement that records that success). log_expired_at, artifact_removed_at: set by the retention sweep.
ALTER TABLE builds
  ADD COLUMN superseded_at timestamptz,
  ADD COLUMN log_expired_at timestamptz,
  ADD COLUMN artifact_removed_at timestamptz;

-- Every success older than another success of its version is superseded since the earliest newer one finished.
UPDATE builds b SET superseded_at = s.at
FROM (
  SELECT o.id, min(n.finished_at) AS at
  FROM builds o
  JOIN builds n ON n.version_id = o.version_id AND n.status = 'succeeded'
    AND (n.finished_at, n.id) > (o.finished_at, o.id)
  WHERE o.status = 'succeeded'
  GROUP BY o.id
) s
WHERE b.id = s.id;

-- The sweep's two walks, oldest first, over only what is still to do, so each batch is an index range.
CREATE INDEX builds_log_retention_idx ON builds (finished_at, id)
  WHERE log_key IS NOT NULL AND log_expired_at IS NULL AND status IN ('succeeded', 'failed');
CREATE INDEX builds_superseded_retention_idx ON builds (superseded_at, id)
  WHERE superseded_at IS NOT NULL AND artifact_removed_at IS NULL AND status = 'succeeded';
