-- Notifications sent on (src/notify/delivery/, docs/notifications.md): one row per notice and
-- channel, kept whatever becomes of it, so a notice that could not be delivered is seen as
-- failed, never silently lost. `target` is the webhook URL or the e-mail address.
CREATE TABLE notification_deliveries (
  id               text PRIMARY KEY,
  notification_id  text NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
  department       text NOT NULL,
  channel          text NOT NULL CHECK (channel IN ('webhook', 'email')),
  target           text NOT NULL,
  status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz,
  UNIQUE (notification_id, channel)
);
CREATE INDEX notification_deliveries_department ON notification_deliveries (department, id DESC);
