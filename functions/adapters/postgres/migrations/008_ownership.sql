-- Ownership (issue 11, items 2 and 6): per-package owner tokens, stored only as SHA-256 hashes, and retired refs.
-- Statements end with ";" at the end of a line so the Data API driver can send them one by one.

-- An admin issues these (POST /v2/packages/{ns}/{name}/tokens); the token itself is answered once, never stored.
CREATE TABLE owner_tokens (
  id uuid PRIMARY KEY,
  repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  token_sha256 text NOT NULL CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
  label text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT owner_tokens_token_sha256_key UNIQUE (token_sha256)
);
CREATE INDEX owner_tokens_repository_idx ON owner_tokens (repository_id);

-- A retired ref (hex.pm's retire): every versions row of the (repository, ref) carries the same retirement, so the
-- reads that leave retired versions out (/versions, /last_builds, /get without a ref) and /search, which shows it,
-- read it from the versions row they read anyway. A version added later for a retired ref copies it (upsertVersion).
ALTER TABLE versions
  ADD COLUMN retired_reason text CHECK (retired_reason IN ('other', 'invalid', 'security', 'deprecated', 'renamed')),
  ADD COLUMN retired_message text,
  ADD COLUMN retired_at timestamptz,
  ADD CONSTRAINT versions_retirement_whole CHECK (
    (retired_reason IS NULL) = (retired_at IS NULL) AND (retired_reason IS NULL) = (retired_message IS NULL)
  );
