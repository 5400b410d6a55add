// The tier tree (DESIGN.md §6): national 100000 → province XX0000 → city XXYY00 → county
// XXYYZZ. Each node is configured with its own tier, GB/T 2260 region, public URL,
// certificate and parent, plus the topology it knows (at least its parent and children,
// with the https URL of their node-to-node listener). This file reads that part of the
// configuration and refuses impossible trees before the node starts. It imports nothing
// from config/ at runtime, so config/index.ts can call it without a cycle.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

export type Tier = 'national' | 'province' | 'city' | 'county'

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

export interface TiersConfig {
  /** The mTLS listener for node traffic; null when the node talks to no other node. */
  listen: { host: string; port: number } | null
  /** The nodes this node knows, itself included. Empty: a single, stand-alone node. */
  nodes: TopologyNode[]
  /** Upper bound of one call to the next hop (ms); shrinks along the path with the caller's budget. */
  hopTimeoutMs: number
  /** Calls in flight at once to one next hop, per replica; more are refused with 503 HOP_SATURATED. */
  maxConcurrentPerHop: number
  /** Consecutive failures that open a next hop's breaker, and how long it stays open (ms). */
  breaker: { failures: number; openMs: number }
  /** Safety-net interval of catalogue publication to the parent (ms); changes publish at once. */
  syncIntervalMs: number
  /** BullMQ attempts and first backoff (ms, exponential) of a catalogue publication. */
  syncAttempts: number
  syncBackoffMs: number
  /** BullMQ attempts and first backoff (ms, exponential) of one leg of an application message. */
  messageAttempts: number
  messageBackoffMs: number
}

type Env = Record<string, string | undefined>

export const TIER_ORDER: Tier[] = ['national', 'province', 'city', 'county']

const REGION = /^[1-9][0-9]{5}$/
// 直辖市: their districts and counties belong directly to the municipality.
const MUNICIPALITIES = new Set(['11', '12', '31', '50'])

/** The tier a GB/T 2260 code denotes: 100000 national, XX0000 province, XXYY00 city, else county. */
export function regionTier(region: string): Tier {
  if (region === '100000') return 'national'
  if (region.endsWith('0000')) return 'province'
  if (region.endsWith('00')) return 'city'
  return 'county'
}

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

/** Whether the division `inner` lies within (or is) the division `outer`, by code prefix. */
export function regionWithin(inner: string, outer: string): boolean {
  switch (regionTier(outer)) {
    case 'national':
      return true
    case 'province':
      return inner.slice(0, 2) === outer.slice(0, 2)
    case 'city':
      return inner.slice(0, 4) === outer.slice(0, 4)
    case 'county':
      return inner === outer
  }
}

const int = (env: Env, name: string): number | undefined => {
  const v = env[name]
  if (v === undefined || v === '') return undefined
  const n = Number(v)
  if (!Number.isInteger(n)) throw new TiersConfigError(`${name}: expected an integer, got ${JSON.stringify(v)}`)
  return n
}

function readTopologyFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new TiersConfigError(`topology file ${path}: ${(e as Error).message}`)
  }
}

/** A tiers setting that cannot even be read; config/index.ts turns it into a ConfigError. */
export class TiersConfigError extends Error {}

/**
 * The `tiers` section of the configuration: defaults < config file (`tiers`) < env.
 *   TONGBAN_TOPOLOGY           JSON: the node list, or { "nodes": [...] }
 *   TONGBAN_TOPOLOGY_FILE      a JSON file of the same (relative to the root)
 *   TONGBAN_NODE_PORT/_HOST    the mTLS node listener (port 0: any free port)
 *   TONGBAN_HOP_TIMEOUT_MS, TONGBAN_HOP_MAX_CONCURRENT, TONGBAN_BREAKER_FAILURES,
 *   TONGBAN_BREAKER_OPEN_MS, TONGBAN_SYNC_INTERVAL_MS, TONGBAN_SYNC_ATTEMPTS, TONGBAN_SYNC_BACKOFF_MS,
 *   TONGBAN_MESSAGE_ATTEMPTS, TONGBAN_MESSAGE_BACKOFF_MS
 */
export function readTiersConfig(env: Env, file: Record<string, any>, root: string, defaultHost: string): unknown {
  const ft = file.tiers ?? {}
  let nodes: unknown = ft.nodes
  const topologyFile = env.TONGBAN_TOPOLOGY_FILE ?? ft.topologyFile
  if (topologyFile) nodes = readTopologyFile(resolve(root, topologyFile))
  if (env.TONGBAN_TOPOLOGY) {
    try {
      nodes = JSON.parse(env.TONGBAN_TOPOLOGY)
    } catch {
      throw new TiersConfigError(`TONGBAN_TOPOLOGY: expected JSON, got ${JSON.stringify(env.TONGBAN_TOPOLOGY.slice(0, 80))}`)
    }
  }
  if (nodes && typeof nodes === 'object' && !Array.isArray(nodes) && 'nodes' in nodes) nodes = (nodes as { nodes: unknown }).nodes
  const port = int(env, 'TONGBAN_NODE_PORT') ?? ft.listen?.port
  return {
    listen: port === undefined || port === null ? null : { host: env.TONGBAN_NODE_HOST ?? ft.listen?.host ?? defaultHost, port },
    nodes: nodes ?? [],
    hopTimeoutMs: int(env, 'TONGBAN_HOP_TIMEOUT_MS') ?? ft.hopTimeoutMs ?? 5000,
    maxConcurrentPerHop: int(env, 'TONGBAN_HOP_MAX_CONCURRENT') ?? ft.maxConcurrentPerHop ?? 64,
    breaker: {
      failures: int(env, 'TONGBAN_BREAKER_FAILURES') ?? ft.breaker?.failures ?? 5,
      openMs: int(env, 'TONGBAN_BREAKER_OPEN_MS') ?? ft.breaker?.openMs ?? 10_000,
    },
    syncIntervalMs: int(env, 'TONGBAN_SYNC_INTERVAL_MS') ?? ft.syncIntervalMs ?? 300_000,
    syncAttempts: int(env, 'TONGBAN_SYNC_ATTEMPTS') ?? ft.syncAttempts ?? 10,
    syncBackoffMs: int(env, 'TONGBAN_SYNC_BACKOFF_MS') ?? ft.syncBackoffMs ?? 1000,
    // 12 attempts from 2 s doubling: a message keeps trying for about 2 h before it is failed.
    messageAttempts: int(env, 'TONGBAN_MESSAGE_ATTEMPTS') ?? ft.messageAttempts ?? 12,
    messageBackoffMs: int(env, 'TONGBAN_MESSAGE_BACKOFF_MS') ?? ft.messageBackoffMs ?? 2000,
  }
}

/** `TONGBAN_NODE_PARENT` (or `node.parent` in the file): '' and 'none' mean no parent. */
export function readParent(env: Env, file: Record<string, any>): string | null {
  const v = env.TONGBAN_NODE_PARENT ?? file.node?.parent ?? null
  return v === '' || v === 'none' ? null : v
}

/** JSON Schema of the `tiers` section (config/schema.ts includes it). */
export const tiersConfigSchema = {
  type: 'object',
  required: ['listen', 'nodes', 'hopTimeoutMs', 'maxConcurrentPerHop', 'breaker', 'syncIntervalMs', 'syncAttempts', 'syncBackoffMs'],
  properties: {
    listen: {
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          required: ['host', 'port'],
          properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
        },
      ],
    },
    nodes: {
      type: 'array',
      maxItems: 10_000,
      items: {
        type: 'object',
        required: ['id', 'tier', 'region'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', pattern: '^[1-9][0-9]{5}$' },
          name: { type: 'string', minLength: 1 },
          tier: { enum: TIER_ORDER },
          region: { type: 'string', pattern: '^[1-9][0-9]{5}$' },
          parent: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^[1-9][0-9]{5}$' }] },
          publicUrl: { type: 'string', pattern: '^https?://' },
          nodeUrl: { type: 'string', pattern: '^https://[^/]+/?$' },
        },
      },
    },
    hopTimeoutMs: { type: 'integer', minimum: 50, maximum: 120_000 },
    maxConcurrentPerHop: { type: 'integer', minimum: 1, maximum: 4096 },
    breaker: {
      type: 'object',
      properties: { failures: { type: 'integer', minimum: 1, maximum: 1000 }, openMs: { type: 'integer', minimum: 100, maximum: 3_600_000 } },
    },
    syncIntervalMs: { type: 'integer', minimum: 1000 },
    syncAttempts: { type: 'integer', minimum: 1, maximum: 100 },
    syncBackoffMs: { type: 'integer', minimum: 10, maximum: 600_000 },
    messageAttempts: { type: 'integer', minimum: 1, maximum: 100 },
    messageBackoffMs: { type: 'integer', minimum: 10, maximum: 600_000 },
  },
} as const

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
