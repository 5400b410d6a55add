-- Daily rollup of the audit log for GET /v1/audit/stats (issue 5, item 7; src/audit/rollup.ts).
--
-- Derived data, not evidence: every row can be rebuilt from audit_records, so these tables
-- are ordinary ones (the gateway role maintains them; no append-only trigger). They hold
-- no personal data: no subject, case, purpose or operator — only codes of departments,
-- systems, regions and resources, counts and latencies.
--
-- One row per day (Asia/Shanghai) and key. The key holds every dimension that stats groups
-- or filters by and that the rollup can answer (resource, operation → kind, consumer
-- department, system and region → tier, decision, reason); NULLs are one key value each
-- (NULLS NOT DISTINCT, PostgreSQL 15+).
--
-- Latency (record time − ULID arrival time, 0…600,000 ms, integer ms: see 004) is kept as a
-- histogram with fixed buckets 1 ms wide, stored sparse: `latency_ms` the bucket values in
-- ascending order, `latency_n` the number of records in each. Latencies are whole ms, so a
-- percentile computed from merged histograms is exactly percentile_cont over the records.
-- `first_time`/`last_time` bound the records' times, so a partial last day (to = now) can
-- still be answered from the rollup when no rolled-up record lies past `to`.
CREATE TABLE audit_daily (
  day                  date NOT NULL,
  resource             text,
  operation            text,
  consumer_department  text,
  consumer_system      text,
  consumer_region      text,
  decision             text NOT NULL,
  reason               text,
  records              bigint NOT NULL CHECK (records > 0),
  latency_ms           integer[] NOT NULL DEFAULT '{}',
  latency_n            integer[] NOT NULL DEFAULT '{}',
  first_time           timestamptz NOT NULL,
  last_time            timestamptz NOT NULL,
  CONSTRAINT audit_daily_key UNIQUE NULLS NOT DISTINCT
    (day, resource, operation, consumer_department, consumer_system, consumer_region, decision, reason)
) WITH (fillfactor = 70);  -- today's rows are updated every pass: room for HOT updates

-- The same histograms for the coarser key (day, resource, operation): what the latency
-- percentiles of an answer filtered by nothing but resource, provider, service, operation
-- or kind (the dashboard) are computed from, a small fraction of audit_daily's buckets.
-- Only keys with latency samples have a row.
CREATE TABLE audit_daily_latency (
  day         date NOT NULL,
  resource    text,
  operation   text,
  latency_ms  integer[] NOT NULL,
  latency_n   integer[] NOT NULL,
  CONSTRAINT audit_daily_latency_key UNIQUE NULLS NOT DISTINCT (day, resource, operation)
) WITH (fillfactor = 70);

-- The watermark: per chain, the last batch (checkpoint seq) whose records are in
-- audit_daily. Batches of a chain commit strictly in seq order (store.ts: a checkpoint is
-- only written when seq − 1 is committed, in the same statement as its records), so "every
-- record of batches ≤ seq" is exactly what has been counted, whatever the records' times:
-- late batches from another replica are counted when they arrive, never twice, never lost.
CREATE TABLE audit_rollup_state (
  chain       text PRIMARY KEY,
  seq         bigint NOT NULL CHECK (seq >= 0),
  records     bigint NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
