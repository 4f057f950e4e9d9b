-- Rate limits (issue 11): one counter per client bucket and fixed window, shared by every process (each Lambda,
-- every local server on one database). A bucket names what is counted and for whom: `build:<ip>`, `read:<ip>`,
-- `webhook:<namespace/name>`. Windows that ended are deleted (pruneRateLimitWindows), so the table stays small.
CREATE TABLE rate_limits (
  bucket text NOT NULL CHECK (bucket <> ''),
  window_start timestamptz NOT NULL,
  count integer NOT NULL CHECK (count >= 0),
  PRIMARY KEY (bucket, window_start)
);

-- The prune deletes by window start, never scanning live windows.
CREATE INDEX rate_limits_window_start_idx ON rate_limits (window_start);
