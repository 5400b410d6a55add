-- Disputes (疑义数据校核, src/disputes/, docs/disputes.md): a consumer department disputes an
-- answer it received; the providing department checks it and resolves it within a deadline.
-- No personal data in clear: the subject is the audit record's keyed hash, the items are
-- item names (never values), and a description holding an id number is refused.
CREATE TABLE disputes (
  id                   text PRIMARY KEY,
  -- The disputed answer: its request id and the audit record it was sealed as.
  request_id           text NOT NULL,
  answer_node          text NOT NULL,
  answer_time          timestamptz NOT NULL,
  resource             text NOT NULL,
  operation            text,
  subject              text,
  consumer_department  text NOT NULL,
  consumer_system      text NOT NULL,
  provider_department  text NOT NULL,
  items                text[] NOT NULL,
  reason               text NOT NULL CHECK (reason IN ('FACT_MISMATCH', 'OUTDATED', 'MISSING', 'OTHER')),
  description          text NOT NULL,
  status               text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  due_at               timestamptz NOT NULL,
  reminded_at          timestamptz,
  escalated_at         timestamptz,
  resolution           text CHECK (resolution IN ('CONFIRMED', 'CORRECTED', 'REJECTED')),
  resolution_note      text,
  effective_from       date,
  resolved_at          timestamptz,
  resolved_by          text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  filed_by             text NOT NULL,
  CHECK ((status = 'open') = (resolution IS NULL)),
  CHECK (resolution IS DISTINCT FROM 'CORRECTED' OR effective_from IS NOT NULL)
);
-- One open dispute per answer and department: a second is a duplicate (409).
CREATE UNIQUE INDEX disputes_one_per_answer ON disputes (request_id, consumer_department);
CREATE INDEX disputes_provider ON disputes (provider_department, status, due_at);
CREATE INDEX disputes_consumer ON disputes (consumer_department, created_at DESC);
CREATE INDEX disputes_resource ON disputes (resource, created_at);
-- The corrected subjects and resources whose later answers carry Tongban-Data-Notice.
CREATE INDEX disputes_corrected ON disputes (resolved_at) WHERE resolution = 'CORRECTED';

-- Every step of a dispute, each sealed as its own audit record (`sealed` is the exact JSON
-- text hashed into responseDigest, `evidence` its Tongban-Evidence): the history verifies
-- like an answer.
CREATE TABLE dispute_events (
  id           bigserial PRIMARY KEY,
  dispute_id   text NOT NULL REFERENCES disputes (id),
  at           timestamptz NOT NULL DEFAULT now(),
  actor        text NOT NULL,
  action       text NOT NULL,
  request_id   text NOT NULL,
  sealed       text NOT NULL,
  evidence     text NOT NULL
);
CREATE INDEX dispute_events_dispute ON dispute_events (dispute_id, id);

-- Other consumers who received the same subject's data of the corrected resource (found in
-- the audit log by the keyed hash), told of the correction.
CREATE TABLE dispute_recipients (
  dispute_id           text NOT NULL REFERENCES disputes (id),
  consumer_department  text NOT NULL,
  answers              integer NOT NULL,
  last_answer_at       timestamptz NOT NULL,
  notified_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dispute_id, consumer_department)
);

-- The inbox learns the dispute kinds (src/notify/texts.ts).
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
  'reminder', 'escalation', 'decision', 'revocation', 'expiry', 'application',
  'dispute', 'dispute-reminder', 'dispute-escalation', 'dispute-resolution', 'data-correction'));
