-- Departmental systems allowed to call this node (registry; certificates are the credentials).
CREATE TABLE systems (
  client_id        text PRIMARY KEY,
  name             text NOT NULL,
  department_code  text NOT NULL,
  department_name  text NOT NULL,
  region           text NOT NULL,
  roles            text[] NOT NULL,
  cert_pem         text NOT NULL,
  cert_thumbprint  text NOT NULL,
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Catalogue: every version of every entry is kept; the newest active version answers.
CREATE TABLE catalog_resources (
  code          text NOT NULL,
  version       integer NOT NULL,
  entry         jsonb NOT NULL,
  content_hash  text NOT NULL,
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text NOT NULL,
  PRIMARY KEY (code, version)
);

-- Signed checkpoints: one per sealed batch, hash-chained per replica (chain).
CREATE TABLE audit_checkpoints (
  chain       text NOT NULL,
  seq         bigint NOT NULL CHECK (seq >= 1),
  node        text NOT NULL,
  root        text NOT NULL,
  size        integer NOT NULL CHECK (size >= 1),
  prev        text NOT NULL,
  time        timestamptz NOT NULL,
  alg         text NOT NULL,
  kid         text NOT NULL,
  sig         text NOT NULL,
  hash        text NOT NULL UNIQUE,
  checkpoint  jsonb NOT NULL,
  PRIMARY KEY (chain, seq)
);

-- Audit records: append-only, partitioned by month. `record` is exactly what was hashed;
-- the other columns are copies for search. No raw personal identifier ever lands here:
-- `subject` is an HMAC under the node audit key.
CREATE TABLE audit_records (
  time                 timestamptz NOT NULL,
  chain                text NOT NULL,
  seq                  bigint NOT NULL,
  idx                  integer NOT NULL,
  request_id           text NOT NULL,
  consumer_department  text,
  consumer_system      text,
  resource             text,
  operation            text,
  purpose              text,
  case_id              text,
  decision             text NOT NULL,
  reason               text,
  subject              text,
  leaf                 text NOT NULL,
  record               jsonb NOT NULL,
  PRIMARY KEY (chain, seq, idx, time)
) PARTITION BY RANGE (time);

CREATE TABLE audit_records_default PARTITION OF audit_records DEFAULT;
CREATE INDEX audit_records_time ON audit_records (time);
CREATE INDEX audit_records_request ON audit_records (request_id);
CREATE INDEX audit_records_subject ON audit_records (subject, time) WHERE subject IS NOT NULL;
CREATE INDEX audit_records_consumer ON audit_records (consumer_department, time);

CREATE FUNCTION ensure_audit_partitions(start timestamptz, months integer) RETURNS void AS $$
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
    END IF;
  END LOOP;
END $$ LANGUAGE plpgsql;

-- Append-only, enforced by the database itself: no UPDATE, DELETE or TRUNCATE of audit rows.
-- Retention detaches whole monthly partitions after export (DDL, by the owner role).
CREATE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit tables are append-only (% on %)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
