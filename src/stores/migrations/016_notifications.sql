-- Notifications (src/notify/, docs/notifications.md): the in-app inbox of each department.
-- One row per notice; `ref` names the event (kind and entity) so a job or message that runs
-- twice tells nobody twice. Texts are stored in both languages, Chinese first.
CREATE TABLE notifications (
  id          text PRIMARY KEY,
  department  text NOT NULL,
  -- A notice for one system of the department (null: the whole department).
  system      text,
  kind        text NOT NULL CHECK (kind IN ('reminder', 'escalation', 'decision', 'revocation', 'expiry', 'application')),
  title       jsonb NOT NULL,
  body        jsonb NOT NULL,
  link        text,
  ref         text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  read_at     timestamptz
);
CREATE INDEX notifications_department ON notifications (department, created_at DESC, id DESC);
