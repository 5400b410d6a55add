// The tier tree (docs/tiers.md): national 100000 → province XX0000 → city XXYY00 → county
// XXYYZZ. Each node is configured with its own tier, GB/T 2260 region, public URL,
// certificate and parent, plus the topology it knows (at least its parent and children,
// with the https URL of their node-to-node listener). The configuration (src/config) reads
// that part; this file refuses impossible trees before the node starts (checkTopology,
// called by the start-up path: src/server.ts, tongban prepare).
import { ConfigError, type Config } from '../config/index.js'
import type { RegionTier } from '../gb/region.js'

export type Tier = RegionTier

/** The tiers section of the configuration (src/config/schema.ts). */
export type TiersConfig = Config['tiers']

export interface TopologyNode {
  id: string
  name?: string
  tier: Tier
  /** GB/T 2260 code of the division the node serves. */
  region: string
  /** Parent node id; null only for the root of the tree (national, or a stand-alone province). */
  parent: string | null
  /** The node's public API (consumers), informative here. */
  publicUrl?: string
  /** The node's node-to-node mTLS listener, e.g. https://127.0.0.1:9443. */
  nodeUrl?: string
}

export const TIER_ORDER: Tier[] = ['national', 'province', 'city', 'county']

// 直辖市: their districts and counties belong directly to the municipality.
const MUNICIPALITIES = new Set(['11', '12', '31', '50'])

// The tier of a code and containment are the standard's (src/gb/region.ts), not the tree's.
import { tierOfRegion as regionTier, regionWithin } from '../gb/region.js'
export { regionTier, regionWithin }

/**
 * Regions a node of `region` may have as parent. A county belongs to its city (XXYY00); a
 * county of a municipality (直辖市) or a county-level division directly under a province
 * (省直辖县级, city digits 90) may belong to the province. A city belongs to its province,
 * a province to the national node.
 */
export function parentRegionsOf(region: string): string[] {
  switch (regionTier(region)) {
    case 'national':
      return []
    case 'province':
      return ['100000']
    case 'city':
      return [`${region.slice(0, 2)}0000`]
    case 'county': {
      const city = `${region.slice(0, 4)}00`
      const province = `${region.slice(0, 2)}0000`
      return MUNICIPALITIES.has(region.slice(0, 2)) || region.slice(2, 4) === '90' ? [city, province] : [city]
    }
  }
}

export interface SelfNode {
  id: string
  name?: string
  tier: Tier
  region: string
  parent: string | null
  publicUrl?: string
}

/**
 * Every reason the topology is impossible, one line each; [] when it is fine. Only checked
 * when the node takes part in a tree (a parent, or a topology list): a stand-alone node
 * keeps the one-node defaults.
 */
export function topologyProblems(self: SelfNode, t: Pick<TiersConfig, 'nodes' | 'listen'>): string[] {
  if (self.parent === null && t.nodes.length === 0) return []
  const problems: string[] = []
  const label = (n: { id: string; tier: string }) => `node ${n.id} (${n.tier})`

  const byId = new Map<string, TopologyNode>()
  for (const n of t.nodes) {
    if (byId.has(n.id)) problems.push(`node ${n.id} is listed twice`)
    byId.set(n.id, { ...n, parent: n.parent ?? null })
  }
  const listed = byId.get(self.id)
  if (listed) {
    for (const f of ['tier', 'region', 'parent'] as const) {
      if ((listed[f] ?? null) !== self[f]) {
        problems.push(`${label(self)}: the topology says ${f} ${JSON.stringify(listed[f] ?? null)}, this node's configuration ${JSON.stringify(self[f])}`)
      }
    }
  } else {
    byId.set(self.id, { id: self.id, name: self.name, tier: self.tier, region: self.region, parent: self.parent, publicUrl: self.publicUrl })
  }

  // Cycles first: along a cycle every other message would be a consequence.
  const onCycle = new Set<string>()
  for (const start of byId.keys()) {
    const seen: string[] = []
    let cur: string | null = start
    while (cur !== null && byId.has(cur) && !seen.includes(cur)) {
      seen.push(cur)
      cur = byId.get(cur)!.parent
    }
    if (cur !== null && seen.includes(cur)) {
      const cycle = [...seen.slice(seen.indexOf(cur)), cur]
      const key = [...cycle.slice(0, -1)].sort().join(',')
      if (!onCycle.has(key)) {
        onCycle.add(key)
        problems.push(`the parents form a cycle: ${cycle.join(' → ')}`)
      }
    }
  }

  for (const n of byId.values()) {
    if (regionTier(n.region) !== n.tier) {
      problems.push(`${label(n)}: region ${n.region} is a ${regionTier(n.region)} code, not a ${n.tier} one`)
    }
    if (n.id !== n.region) problems.push(`${label(n)}: the node id must be its region code (${n.region})`)
    if (n.parent === null) {
      continue
    }
    if (n.parent === n.id) continue // reported as a cycle
    const p = byId.get(n.parent)
    if (!p) {
      problems.push(`${label(n)}: its parent ${n.parent} is not in the topology`)
      continue
    }
    if (n.tier === 'national') {
      problems.push(`${label(n)}: the national node has no parent (it names ${p.id})`)
      continue
    }
    const allowed = parentRegionsOf(n.region)
    if (!allowed.includes(p.region)) {
      const what = n.tier === 'county' ? 'its city' : n.tier === 'city' ? 'its province' : 'the national node'
      problems.push(`${label(n)}: parent ${p.id} (${p.tier}, region ${p.region}) is not ${what}; expected ${allowed.join(' or ')}`)
    }
  }

  // What this node itself needs to reach its neighbours.
  const me = byId.get(self.id)!
  const neighbours = [...byId.values()].filter((n) => n.id === me.parent || n.parent === me.id)
  for (const n of neighbours) {
    if (!n.nodeUrl) problems.push(`${label(n)}: nodeUrl (https://host:port of its node listener) is required, it is a neighbour of this node`)
  }
  if (neighbours.length > 0 && !t.listen) {
    problems.push(`${label(me)}: tiers.listen (TONGBAN_NODE_PORT) is required: the neighbours ${neighbours.map((n) => n.id).join(', ')} call this node over mTLS`)
  }
  return problems
}

/**
 * Refuses an impossible tree (a county under another city, a cycle, a wrong prefix) with
 * every reason, before the node starts: the start-up path turns it into exit 2.
 */
export function checkTopology(config: Pick<Config, 'node' | 'tiers'>): void {
  const problems = topologyProblems(config.node, config.tiers)
  if (problems.length) throw new ConfigError(`invalid topology:\n  ${problems.join('\n  ')}`)
}

/** The tree as one node sees it: itself, its parent and children, and who lies below whom. */
export class Topology {
  readonly self: TopologyNode
  readonly parent: TopologyNode | null
  readonly children: TopologyNode[]
  private readonly byId: Map<string, TopologyNode>

  constructor(self: SelfNode, nodes: TopologyNode[]) {
    this.byId = new Map(nodes.map((n) => [n.id, { ...n, parent: n.parent ?? null }]))
    const listed = this.byId.get(self.id)
    this.self = { ...listed, ...self, publicUrl: self.publicUrl ?? listed?.publicUrl, nodeUrl: listed?.nodeUrl }
    this.byId.set(self.id, this.self)
    this.parent = self.parent ? this.byId.get(self.parent) ?? null : null
    this.children = [...this.byId.values()].filter((n) => n.parent === self.id)
  }

  get(id: string): TopologyNode | undefined {
    return this.byId.get(id)
  }

  /** True when the node has someone to talk to. */
  get connected(): boolean {
    return this.parent !== null || this.children.length > 0
  }

  isChild(id: string): boolean {
    return this.children.some((c) => c.id === id)
  }

  isNeighbour(id: string): boolean {
    return this.parent?.id === id || this.isChild(id)
  }

  /**
   * The child below which node `id` lies: by the known parent links, else by region (a
   * county code lies in its city's subtree). Undefined when `id` is not below this node.
   */
  childToward(id: string): TopologyNode | undefined {
    let cur = this.byId.get(id)
    const seen = new Set<string>()
    while (cur && !seen.has(cur.id)) {
      seen.add(cur.id)
      if (cur.parent === this.self.id) return this.children.find((c) => c.id === cur!.id)
      cur = cur.parent ? this.byId.get(cur.parent) : undefined
    }
    return this.children.find((c) => c.region !== id && regionWithin(id, c.region))
  }
}
