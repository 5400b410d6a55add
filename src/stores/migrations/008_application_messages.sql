-- Applications across tiers (src/policy/application-messages.ts, docs/tiers.md): an application
-- for a resource owned by another node is recorded at the consumer's node (the origin) and
-- travels to the owning node as queued messages; the decision travels back.

-- At the origin: the owning node (known from the catalogue below, else once it answers), the
-- delivery state of the submission, and the decision as the owner sent it. At the owner:
-- origin_node names the node the decision goes back to. Both null: a local application.
ALTER TABLE applications
  ADD COLUMN origin_node        text,
  ADD COLUMN owner_node         text,
  ADD COLUMN delivery           text CHECK (delivery IN ('forwarding', 'delivered', 'failed', 'refused')),
  ADD COLUMN delivery_error     text,
  ADD COLUMN delivery_at        timestamptz,
  ADD COLUMN remote_grant_id    text,
  ADD COLUMN granted            jsonb;
-- The origin learns the providing department and the decision deadline from the owner.
ALTER TABLE applications ALTER COLUMN provider_department DROP NOT NULL;
ALTER TABLE applications ALTER COLUMN due_at DROP NOT NULL;
CREATE INDEX applications_delivery ON applications (delivery) WHERE delivery IN ('forwarding', 'failed');

-- This node's outbox of application messages: written in the same transaction as the state
-- it reports, sent by a BullMQ job (job id = message id) until the next hop takes it. A hop
-- in the middle stores what it received (exact body bytes and assertion chain) and forwards.
CREATE TABLE application_messages (
  id              text PRIMARY KEY,  -- <application id>.<kind>: one of each kind per application
  application_id  text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('submit', 'accepted', 'refused', 'decision', 'undeliverable')),
  -- toward the owner of a resource (target = resource code) or toward a node (target = node id)
  toward          text NOT NULL CHECK (toward IN ('owner', 'node')),
  target          text NOT NULL,
  writer          text NOT NULL,     -- the node that wrote the message (signer of link 0)
  origin_node     text NOT NULL,     -- the consumer's node
  received_from   text,              -- the neighbour it came from; null when written here
  body            text NOT NULL,     -- exact bytes; link 0 signs their digest
  chain           text,              -- the assertion chain received; null when written here
  claims          jsonb,             -- link 0's claims when written here (signed anew at each attempt)
  state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
  next_hop        text,
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX application_messages_app ON application_messages (application_id);
CREATE INDEX application_messages_queued ON application_messages (updated_at) WHERE state = 'queued';
