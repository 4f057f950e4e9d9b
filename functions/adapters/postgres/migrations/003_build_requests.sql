-- Who hears about a build's result: notify asks for an email; notify_email is the address, or NULL for
-- the tagged commit's author (the build records it).
-- Statements end with ";" at the end of a line so the Data API driver can send them one by one.

ALTER TABLE builds
  ADD COLUMN notify boolean NOT NULL DEFAULT false,
  ADD COLUMN notify_email text CHECK (notify_email IS NULL OR notify_email <> '');

-- The reaper: in-flight builds by start time (queued ones by creation use builds_status_created_idx).
CREATE INDEX builds_in_flight_started_idx ON builds (started_at) WHERE status IN ('starting', 'running');
