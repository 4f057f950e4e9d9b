-- Signed statements and checksum indexes (issue 11): each success and each ERTS tarball keeps the canonical JSON
-- statement it was signed as and the DER signature (base64); every public key that signed is kept with its validity.

ALTER TABLE builds ADD COLUMN statement text, ADD COLUMN signature text;

ALTER TABLE erts ADD COLUMN statement text, ADD COLUMN signature text;

-- A key stays listed after a rotation, its not_after set: statements it signed must still verify.
CREATE TABLE signing_keys (
  key_id text PRIMARY KEY CHECK (key_id <> ''),
  pem text NOT NULL,
  jwk text NOT NULL,
  not_before timestamptz NOT NULL,
  not_after timestamptz,
  CONSTRAINT signing_keys_valid_period CHECK (not_after IS NULL OR not_after >= not_before)
);

-- A release's checksum index walks the versions of that release.
CREATE INDEX versions_erl_version_idx ON versions (erl_version);
