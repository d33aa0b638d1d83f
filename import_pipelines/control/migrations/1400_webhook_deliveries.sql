-- Signed run notifications (import_pipelines/webhooks.py): one row per message and endpoint, so a
-- repeated sensor tick does not send an answered message again and a person sees what failed.
CREATE TABLE IF NOT EXISTS import_control.webhook_deliveries (
    webhook_id    text PRIMARY KEY,          -- the message's webhook-id: one per run, event and endpoint
    run_id        text NOT NULL,
    profile       text NOT NULL,
    event         text NOT NULL,             -- succeeded, failed, canceled
    endpoint      text NOT NULL,             -- scheme, host and path: no credentials, no query string
    status_code   integer,                   -- the last answer; null when none came
    attempts      integer NOT NULL,          -- requests sent, retries and repeated ticks included
    error         text,
    delivered_at  timestamptz,               -- when an answer 2xx came
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_run ON import_control.webhook_deliveries (run_id);
