-- Cuts of the audit log's tail (src/audit/high-water.ts, docs/audit.md "A cut tail"): a node
-- that finds its chain's committed head behind its high-water mark (the highest seq it has
-- signed, kept outside PostgreSQL) records a `cut` here, stops sealing on that chain, and
-- goes on only after an operator records a `cut-acknowledged` row for that very mark
-- (`tongban audit acknowledge-cut`). The chain then resumes at hwm_seq + 1 with prev =
-- hwm_hash: a signed seq is never reused, and the gap stays visible to integrity.
-- Append-only, like the audit tables.
CREATE TABLE audit_alarms (
  id              bigserial PRIMARY KEY,
  chain           text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('cut', 'cut-acknowledged')),
  at              timestamptz NOT NULL DEFAULT now(),
  node            text NOT NULL,
  -- The committed head found in PostgreSQL (0 / genesis: none).
  committed_seq   bigint NOT NULL,
  committed_hash  text NOT NULL,
  -- The high-water mark: the newest checkpoint the node signed and released.
  hwm_seq         bigint NOT NULL,
  hwm_hash        text NOT NULL,
  detail          text NOT NULL,
  -- cut-acknowledged only: who and why.
  acknowledged_by text,
  reason          text,
  CHECK (kind = 'cut' OR (acknowledged_by IS NOT NULL AND reason IS NOT NULL))
);
CREATE INDEX audit_alarms_chain ON audit_alarms (chain, hwm_seq);

CREATE TRIGGER audit_alarms_append_only BEFORE UPDATE OR DELETE ON audit_alarms
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_alarms_no_truncate BEFORE TRUNCATE ON audit_alarms
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- The gateway records cuts; the default privileges of 004 would also let it UPDATE/DELETE.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tongban_gateway') THEN
    REVOKE ALL ON audit_alarms FROM tongban_gateway;
    GRANT SELECT, INSERT ON audit_alarms TO tongban_gateway;
  END IF;
END $$;
