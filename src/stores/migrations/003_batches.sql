-- Bulk verification (docs/architecture.md; POST /v1/batches). A batch is one consumer's
-- submission of up to 100,000 queries of one resource operation under one purpose and case.
-- Items are stored in chunks (one row per chunk, one BullMQ job per chunk) and deleted when
-- the batch ends: they hold raw identifiers, which the audit log never does. Results are one
-- row per item, unique per (batch, index): a worker that is killed and restarted, or two
-- workers racing on a stalled job, never write an item twice.
CREATE TABLE batches (
  id                   text PRIMARY KEY,
  consumer_department  text NOT NULL,
  consumer_system      text NOT NULL,
  -- The submitting principal's claims: every item runs as this principal.
  principal            jsonb NOT NULL,
  resource             text NOT NULL,
  operation            text NOT NULL,
  service              text,
  purpose              text NOT NULL,
  case_id              text NOT NULL,
  operator             text,
  request_id           text NOT NULL,
  total                integer NOT NULL CHECK (total > 0),
  chunk_size           integer NOT NULL CHECK (chunk_size > 0),
  succeeded            integer NOT NULL DEFAULT 0,
  failed               integer NOT NULL DEFAULT 0,
  status               text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'cancelled')),
  created_at           timestamptz NOT NULL DEFAULT now(),
  started_at           timestamptz,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  finished_at          timestamptz,
  cancelled_by         text,
  CHECK (succeeded + failed <= total)
);
CREATE INDEX batches_consumer ON batches (consumer_system, created_at DESC);
CREATE INDEX batches_open ON batches (updated_at) WHERE status IN ('queued', 'running');
CREATE INDEX batches_finished ON batches (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE batch_items (
  batch_id  text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
  chunk     integer NOT NULL,
  items     jsonb NOT NULL,
  PRIMARY KEY (batch_id, chunk)
);

CREATE TABLE batch_results (
  batch_id    text NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
  idx         integer NOT NULL,
  ok          boolean NOT NULL,
  status      smallint NOT NULL,
  code        text,
  -- The answer (ok) or the problem+json (not ok), exactly as its digest was taken (JCS).
  body        text NOT NULL,
  request_id  text NOT NULL,
  evidence    text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (batch_id, idx)
);
