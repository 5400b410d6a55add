-- Conditional sharing (有条件共享): applications, their history, and the grants they become.
CREATE TABLE applications (
  id                   text PRIMARY KEY,
  consumer_department  text NOT NULL,
  consumer_system      text NOT NULL,
  system_only          boolean NOT NULL DEFAULT false,
  resource             text NOT NULL,
  provider_department  text NOT NULL,
  items                text[] NOT NULL,
  purposes             text[] NOT NULL,
  basis                text NOT NULL,
  valid_from           timestamptz NOT NULL,
  valid_to             timestamptz NOT NULL,
  daily_quota          integer NOT NULL CHECK (daily_quota > 0),
  status               text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
  due_at               timestamptz NOT NULL,
  reminded_at          timestamptz,
  escalated_at         timestamptz,
  decided_at           timestamptz,
  decided_by           text,
  decision_reason      text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  CHECK (valid_to > valid_from)
);
CREATE INDEX applications_provider ON applications (provider_department, status, created_at);
CREATE INDEX applications_consumer ON applications (consumer_department, created_at);

-- Who did what to an application, when and why (every state change).
CREATE TABLE application_events (
  id              bigserial PRIMARY KEY,
  application_id  text NOT NULL REFERENCES applications (id),
  at              timestamptz NOT NULL DEFAULT now(),
  actor           text NOT NULL,
  action          text NOT NULL,
  detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX application_events_app ON application_events (application_id, id);

CREATE TABLE grants (
  id                   text PRIMARY KEY,
  application_id       text NOT NULL UNIQUE REFERENCES applications (id),
  consumer_department  text NOT NULL,
  consumer_system      text,
  resource             text NOT NULL,
  provider_department  text NOT NULL,
  items                text[] NOT NULL,
  purposes             text[] NOT NULL,
  valid_from           timestamptz NOT NULL,
  valid_to             timestamptz NOT NULL,
  daily_quota          integer NOT NULL CHECK (daily_quota > 0),
  status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked', 'expired')),
  created_at           timestamptz NOT NULL DEFAULT now(),
  revoked_at           timestamptz,
  revoked_by           text,
  revoke_reason        text
);
CREATE INDEX grants_lookup ON grants (consumer_department, resource) WHERE status = 'active';
