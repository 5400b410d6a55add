-- The auditor's side (issue 5): search columns and indexes, anchors, the certificates that
-- signed checkpoints, retention bookkeeping, and a gateway database role that can append
-- to the audit log but never change it.
--
-- The hashed record (`record`, a wire contract) is unchanged. The new search columns are
-- STORED generated columns computed from `record` by PostgreSQL itself: the sealer's
-- INSERT does not name them, and nobody can set them apart from the record.

ALTER TABLE audit_records
  ADD COLUMN operator text GENERATED ALWAYS AS (record ->> 'operator') STORED,
  ADD COLUMN grant_id text GENERATED ALWAYS AS (record ->> 'grant') STORED,
  ADD COLUMN consumer_region text GENERATED ALWAYS AS (record -> 'consumer' ->> 'region') STORED,
  ADD COLUMN node text GENERATED ALWAYS AS (record ->> 'node') STORED;

-- Search indexes: every filter an auditor uses alone is (filter, time), so a filter plus a
-- time range plus "newest first" is one backward index range scan per monthly partition.
-- audit_records_time, _request, _subject and _consumer exist since 001.
CREATE INDEX audit_records_case ON audit_records (case_id, time) WHERE case_id IS NOT NULL;
CREATE INDEX audit_records_system ON audit_records (consumer_system, time);
CREATE INDEX audit_records_resource ON audit_records (resource, time);
CREATE INDEX audit_records_operator ON audit_records (operator, time) WHERE operator IS NOT NULL;
CREATE INDEX audit_records_refused ON audit_records (reason, time) WHERE reason IS NOT NULL;
CREATE INDEX audit_checkpoints_time ON audit_checkpoints (time);

-- Milliseconds encoded in a ULID (the gateway's generated request ids): the request's
-- arrival time. Record time minus this is the handling latency (stats), without changing
-- the hashed record. NULL for anything that is not a ULID.
CREATE FUNCTION tongban_ulid_ms(id text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN id ~ '^[0-7][0-9A-HJKMNP-TV-Z]{25}$' THEN
      (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 1, 1)) - 1)::bigint * 35184372088832
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 2, 1)) - 1)::bigint * 1099511627776
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 3, 1)) - 1)::bigint * 34359738368
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 4, 1)) - 1)::bigint * 1073741824
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 5, 1)) - 1)::bigint * 33554432
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 6, 1)) - 1)::bigint * 1048576
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 7, 1)) - 1)::bigint * 32768
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 8, 1)) - 1)::bigint * 1024
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 9, 1)) - 1)::bigint * 32
    + (strpos('0123456789ABCDEFGHJKMNPQRSTVWXYZ', substr(id, 10, 1)) - 1)::bigint
  END
$$;

-- Every certificate that signed checkpoints here (by kid), so that checkpoints signed
-- before a key rotation stay verifiable and exports can carry them.
CREATE TABLE audit_certificates (
  kid         text PRIMARY KEY,
  cert_pem    text NOT NULL,
  first_seen  timestamptz NOT NULL DEFAULT now()
);

-- Chain heads recorded by an auditor (`tongban audit anchor`, POST /v1/audit/anchors):
-- a later truncation of the chain below an anchor is detected. Keep a copy outside the
-- database too: a DBA can remove rows here as well.
CREATE TABLE audit_anchors (
  id           bigserial PRIMARY KEY,
  chain        text NOT NULL,
  seq          bigint NOT NULL,
  hash         text NOT NULL,
  anchored_at  timestamptz NOT NULL DEFAULT now(),
  anchored_by  text NOT NULL
);
CREATE INDEX audit_anchors_chain ON audit_anchors (chain, seq);

-- Whole monthly partitions removed by `tongban audit retention`, after export. Checkpoints
-- are kept (they hold no personal data), so the chain stays whole; the records of batches
-- up to `through` (per chain) are then in the export bundle, not here.
CREATE TABLE audit_retention (
  id             bigserial PRIMARY KEY,
  partition      text NOT NULL,
  range_from     timestamptz NOT NULL,
  range_to       timestamptz NOT NULL,
  records        bigint NOT NULL,
  through        jsonb NOT NULL,
  bundle_file    text NOT NULL,
  bundle_sha256  text NOT NULL,
  done_at        timestamptz NOT NULL DEFAULT now(),
  done_by        text NOT NULL
);

CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE ON audit_anchors
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_retention_append_only BEFORE UPDATE OR DELETE ON audit_retention
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_certificates_append_only BEFORE UPDATE OR DELETE ON audit_certificates
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();

-- The gateway's database role. Roles are cluster-wide (and many schemas share a test
-- cluster), so it is created once, race-safe. Production runs the gateway as a LOGIN role
-- that is a member of it (docs/audit.md): it may read and append audit rows, never UPDATE,
-- DELETE or TRUNCATE them, and it owns nothing, so it cannot drop or alter tables or
-- disable the triggers. Migrations and retention run as the owner role.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tongban_gateway') THEN
    BEGIN
      CREATE ROLE tongban_gateway NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
END $$;

DO $$
DECLARE
  t record;
  audit_tables text[] := ARRAY['audit_records', 'audit_checkpoints', 'audit_anchors', 'audit_certificates', 'audit_retention'];
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO tongban_gateway', current_schema());
  FOR t IN SELECT c.relname FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition LOOP
    IF t.relname = ANY (audit_tables) THEN
      EXECUTE format('GRANT SELECT, INSERT ON %I TO tongban_gateway', t.relname);
    ELSE
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tongban_gateway', t.relname);
    END IF;
  END LOOP;
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO tongban_gateway', current_schema());
  EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO tongban_gateway', current_schema());
  -- Tables of later migrations get the ordinary rights; audit tables among them must
  -- revoke UPDATE and DELETE themselves (as this file does for its own).
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tongban_gateway', current_schema());
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO tongban_gateway', current_schema());
END $$;

-- New monthly partitions are tables too: without this, the default privileges above would
-- let the gateway role UPDATE or DELETE a partition directly (the trigger would still
-- refuse; the grants refuse first).
CREATE OR REPLACE FUNCTION ensure_audit_partitions(start timestamptz, months integer) RETURNS void AS $$
DECLARE
  m date;
  name text;
BEGIN
  FOR i IN 0..months LOOP
    m := (date_trunc('month', start AT TIME ZONE 'UTC') + make_interval(months => i))::date;
    name := format('audit_records_%s', to_char(m, 'YYYYMM'));
    IF to_regclass(format('%I.%I', current_schema(), name)) IS NULL THEN
      EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.audit_records FOR VALUES FROM (%L) TO (%L)',
        current_schema(), name, current_schema(), m::timestamp AT TIME ZONE 'UTC',
        (m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
      EXECUTE format('REVOKE ALL ON %I.%I FROM tongban_gateway', current_schema(), name);
    END IF;
  END LOOP;
END $$ LANGUAGE plpgsql;

DO $$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'audit_records'::regclass LOOP
    EXECUTE format('REVOKE ALL ON %I FROM tongban_gateway', p.relname);
  END LOOP;
END $$;
