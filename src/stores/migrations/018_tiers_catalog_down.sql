-- The catalogue flowing DOWN the tiers (src/tiers/catalog-down.ts, docs/tiers.md §5): what
-- the parent sent this node about resources held elsewhere (the parent itself, the nodes
-- above it, the nodes beside this one). Kept apart from the own catalogue and from what the
-- children publish (tiers_remote_resources). Each snapshot from the parent replaces the rows
-- in one transaction: a resource withdrawn or retired upstairs disappears here.
CREATE TABLE tiers_upstream_resources (
  node         text NOT NULL,
  code         text NOT NULL,
  region       text NOT NULL,
  tier         text NOT NULL CHECK (tier IN ('national', 'province', 'city', 'county')),
  version      integer NOT NULL CHECK (version >= 1),
  entry        jsonb NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node, code)
);
CREATE INDEX tiers_upstream_resources_code ON tiers_upstream_resources (code);

-- The last snapshot applied from the parent (one row): unchanged snapshots are no-ops, an
-- older one (two replicas of the parent racing) is ignored.
CREATE TABLE tiers_upstream_state (
  parent         text PRIMARY KEY,
  snapshot_time  timestamptz NOT NULL,
  snapshot_hash  text NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now()
);
