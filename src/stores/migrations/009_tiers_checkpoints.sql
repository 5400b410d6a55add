-- Checkpoints sent to the parent node (docs/tiers.md: "checkpoints are also sent to the
-- parent node, so a truncated chain is detectable too"; src/tiers/checkpoint-push.ts).
--
-- Parent side: the signed checkpoints of each child, per chain, contiguous and hash-chained
-- as the child sealed them; the certificates that signed them; and every checkpoint a child
-- offered that contradicts one already held (a fork: the child rewrote or cut and regrew its
-- chain). All three are append-only, like the audit tables: a truncation at the child must
-- not be hideable by a DBA at the parent either.
CREATE TABLE tiers_child_checkpoints (
  node         text NOT NULL,
  chain        text NOT NULL,
  seq          bigint NOT NULL CHECK (seq >= 1),
  hash         text NOT NULL,
  prev         text NOT NULL,
  time         timestamptz NOT NULL,
  kid          text NOT NULL,
  checkpoint   jsonb NOT NULL,
  sig          text NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node, chain, seq)
);

CREATE TABLE tiers_child_certificates (
  kid         text PRIMARY KEY,
  node        text NOT NULL,
  cert_pem    text NOT NULL,
  first_seen  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tiers_checkpoint_conflicts (
  id                  bigserial PRIMARY KEY,
  node                text NOT NULL,
  chain               text NOT NULL,
  seq                 bigint NOT NULL,
  held_hash           text NOT NULL,
  offered_hash        text NOT NULL,
  offered_checkpoint  jsonb NOT NULL,
  offered_sig         text NOT NULL,
  received_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tiers_checkpoint_conflicts_node ON tiers_checkpoint_conflicts (node, chain, seq);

CREATE TRIGGER tiers_child_checkpoints_append_only BEFORE UPDATE OR DELETE ON tiers_child_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER tiers_child_checkpoints_no_truncate BEFORE TRUNCATE ON tiers_child_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER tiers_child_certificates_append_only BEFORE UPDATE OR DELETE ON tiers_child_certificates
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER tiers_checkpoint_conflicts_append_only BEFORE UPDATE OR DELETE ON tiers_checkpoint_conflicts
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER tiers_checkpoint_conflicts_no_truncate BEFORE TRUNCATE ON tiers_checkpoint_conflicts
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- The default privileges of 004 gave the gateway role UPDATE and DELETE on these: take them
-- back (as 004 does for the audit tables).
REVOKE UPDATE, DELETE, TRUNCATE ON tiers_child_checkpoints, tiers_child_certificates, tiers_checkpoint_conflicts FROM tongban_gateway;

-- Child side: how far the parent has acknowledged each chain (the parent's answer is the
-- truth; this only saves resending). Ordinary bookkeeping, not evidence.
CREATE TABLE tiers_checkpoint_acks (
  chain     text PRIMARY KEY,
  seq       bigint NOT NULL,
  hash      text NOT NULL,
  acked_at  timestamptz NOT NULL DEFAULT now()
);
