-- Disputes across tiers (src/disputes/tiers.ts, docs/disputes.md "Across tiers"): a dispute
-- about an answer relayed from another node is recorded at the consumer's node (the origin)
-- and travels to the node holding the resource as queued messages, on the applications'
-- outbox and queue (src/policy/application-messages/, migration 008); the owner's answer and
-- the resolution travel back.

-- The same outbox carries the dispute kinds; application_id holds the id of the thread (an
-- application's or a dispute's: both ULIDs, the kind says which).
ALTER TABLE application_messages DROP CONSTRAINT IF EXISTS application_messages_kind_check;
ALTER TABLE application_messages ADD CONSTRAINT application_messages_kind_check CHECK (kind IN (
  'submit', 'accepted', 'refused', 'decision', 'undeliverable',
  'dispute', 'dispute-accepted', 'dispute-refused', 'dispute-resolved', 'dispute-undeliverable'));

-- At the origin: the owning node, the delivery state of the filing and its last error; the
-- providing department and the deadline come from the owner's `dispute-accepted`. At the
-- owner: origin_node names the node the resolution goes back to. All null: a local dispute.
ALTER TABLE disputes
  ADD COLUMN origin_node     text,
  ADD COLUMN owner_node      text,
  ADD COLUMN delivery        text CHECK (delivery IN ('forwarding', 'delivered', 'refused', 'failed')),
  ADD COLUMN delivery_error  text,
  ADD COLUMN delivery_at     timestamptz;
ALTER TABLE disputes ALTER COLUMN provider_department DROP NOT NULL;
ALTER TABLE disputes ALTER COLUMN due_at DROP NOT NULL;

-- A dispute the owner refused (unknown item, not its answer…) is `refused`: closed without a
-- resolution, and the department may file again (corrected) about the same answer.
DO $$
DECLARE c record;
BEGIN
  FOR c IN SELECT conname FROM pg_constraint
            WHERE conrelid = 'disputes'::regclass AND contype = 'c'
              AND (pg_get_constraintdef(oid) LIKE '%status%') LOOP
    EXECUTE format('ALTER TABLE disputes DROP CONSTRAINT %I', c.conname);
  END LOOP;
END $$;
ALTER TABLE disputes ADD CONSTRAINT disputes_status_check CHECK (status IN ('open', 'resolved', 'refused'));
ALTER TABLE disputes ADD CONSTRAINT disputes_resolved_has_resolution CHECK ((status = 'resolved') = (resolution IS NOT NULL));
DROP INDEX disputes_one_per_answer;
CREATE UNIQUE INDEX disputes_one_per_answer ON disputes (request_id, consumer_department) WHERE status <> 'refused';
CREATE INDEX disputes_delivery ON disputes (delivery) WHERE delivery IN ('forwarding', 'failed');
