-- Which builds a webhook delivery queued, on the build itself, so that a webhook asking again for a version whose
-- webhook build failed less than an hour ago finds it (a signed body replayed with fresh delivery ids).
-- Statements end with ";" at the end of a line so the Data API driver can send them one by one.

ALTER TABLE builds ADD COLUMN webhook_delivery_id text CHECK (webhook_delivery_id IS NULL OR webhook_delivery_id <> '');

-- A version's newest webhook builds (findRecentWebhookBuild); only webhook builds are in it.
CREATE INDEX builds_webhook_by_version_idx ON builds (version_id, created_at DESC, id DESC)
  WHERE webhook_delivery_id IS NOT NULL;
