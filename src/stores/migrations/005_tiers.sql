-- Four tiers (src/tiers): the nodes below this one and what they publish (catalogue sync).
-- Rows are replaced by each snapshot a child sends: a resource withdrawn below disappears
-- here, a retired one stays with status retired.

-- Nodes below this one, as their snapshots name them; `via` is the child through which a
-- node is reached (the child itself for a direct child).
CREATE TABLE tiers_nodes (
  id               text PRIMARY KEY,
  region           text NOT NULL,
  tier             text NOT NULL CHECK (tier IN ('national', 'province', 'city', 'county')),
  via              text NOT NULL,
  -- For a direct child: the x5t#S256 of the client certificate it last synced with, when
  -- its last applied snapshot was made, and its content hash (unchanged snapshots are no-ops).
  cert_thumbprint  text,
  snapshot_time    timestamptz,
  snapshot_hash    text,
  entries          integer NOT NULL DEFAULT 0,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tiers_nodes_via ON tiers_nodes (via);

-- Catalogue entries owned by nodes below this one (the newest version each published).
CREATE TABLE tiers_remote_resources (
  node          text NOT NULL,
  code          text NOT NULL,
  via           text NOT NULL,
  version       integer NOT NULL CHECK (version >= 1),
  status        text NOT NULL CHECK (status IN ('active', 'retired')),
  entry         jsonb NOT NULL,
  content_hash  text NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node, code)
);
CREATE INDEX tiers_remote_resources_code ON tiers_remote_resources (code);
CREATE INDEX tiers_remote_resources_via ON tiers_remote_resources (via);
