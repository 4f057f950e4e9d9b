-- Leases on in-flight builds, so several local workers (several `npm start` on one Postgres) can share the queue:
-- a worker that claims a build writes its id and a heartbeat, renews the heartbeat while it builds, and a build
-- whose heartbeat is older than the lease is taken over by another worker. The AWS dispatcher leaves both NULL
-- (the reaper keeps watching those builds). NULL heartbeat on a build in flight: claimed before leases existed,
-- or by the AWS dispatcher; a local worker treats it as expired.
-- Statements end with ";" at the end of a line so the Data API driver can send them one by one.

ALTER TABLE builds
  ADD COLUMN worker_id text,
  ADD COLUMN heartbeat_at timestamptz;

-- The lease scan: in-flight builds by heartbeat, oldest (or NULL) first.
CREATE INDEX builds_in_flight_heartbeat_idx ON builds (heartbeat_at NULLS FIRST) WHERE status IN ('starting', 'running');

-- A worker's own builds (heartbeats, the leases it gives up on stopping).
CREATE INDEX builds_in_flight_worker_idx ON builds (worker_id) WHERE status IN ('starting', 'running');
