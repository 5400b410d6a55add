// The four-node tree that runs on one machine, for `npm start -- --tiers` (local-tree.ts) and
// for the tiers benchmark (bench/tiers.ts): its nodes, their topology, which catalogue
// entries each node holds, and the environment each node's gateway process starts with.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TreeNode {
  id: string
  tier: 'national' | 'province' | 'city' | 'county'
  name: string
  parent: string | null
}

/** National 100000, Jiangsu 320000, Nanjing 320100, Jiangning 320115: root first. */
export const treeNodes = (nationalName: string): TreeNode[] => [
  { id: '100000', tier: 'national', name: nationalName, parent: null },
  { id: '320000', tier: 'province', name: '江苏省政务数据共享交换平台', parent: '100000' },
  { id: '320100', tier: 'city', name: '南京市政务数据共享交换平台', parent: '320000' },
  { id: '320115', tier: 'county', name: '江宁区政务数据共享交换平台', parent: '320100' },
]

export interface TreePorts {
  /** The public API. */
  pub: number
  /** The node listener (mutual TLS between nodes). */
  node: number
}

export const treeTopology = (nodes: TreeNode[], ports: TreePorts[]) =>
  nodes.map((n, i) => ({ id: n.id, tier: n.tier, region: n.id, parent: n.parent, name: n.name, nodeUrl: `https://127.0.0.1:${ports[i].node}`, publicUrl: `http://127.0.0.1:${ports[i].pub}` }))

// Identity is held at the national node (the Ministry of Public Security's service answers
// for the whole country); every other entry stays in the region catalog/ puts it.
const IDENTITY = '101001/00001'
const NATIONAL_IDENTITY = { name: '公安部', code: '11100000000013338W', region: '100000' }

/**
 * Writes each node's catalogue directory under `work` (`<work>/<node>/catalog`, emptied
 * first): the entries of `<root>/catalog` whose provider is in the node's region.
 * Returns, per node, its directory and the codes it holds.
 */
export function placeCatalogues(root: string, work: string, nodes: TreeNode[]): Array<{ dir: string; codes: string[] }> {
  const entries = readdirSync(join(root, 'catalog'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      const entry = JSON.parse(readFileSync(join(root, 'catalog', f), 'utf8'))
      return { file: f, entry: entry.code === IDENTITY ? { ...entry, provider: NATIONAL_IDENTITY } : entry }
    })
  return nodes.map((n) => {
    const dir = join(work, n.id, 'catalog')
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const mine = entries.filter((e) => e.entry.provider?.region === n.id)
    for (const e of mine) writeFileSync(join(dir, e.file), JSON.stringify(e.entry, null, 2))
    return { dir, codes: mine.map((e) => e.entry.code as string) }
  })
}

/** What a node of the tree needs to know about itself and the others. */
export function treeNodeEnv(
  nodes: TreeNode[],
  ports: TreePorts[],
  i: number,
  o: { schema: string; redisPrefix: string; replicaId: string; catalogDir: string },
): Record<string, string> {
  const n = nodes[i]
  return {
    TONGBAN_NODE_ID: n.id,
    TONGBAN_NODE_REGION: n.id,
    TONGBAN_NODE_TIER: n.tier,
    TONGBAN_NODE_NAME: n.name,
    TONGBAN_NODE_PARENT: n.parent ?? '',
    TONGBAN_TOPOLOGY: JSON.stringify(treeTopology(nodes, ports)),
    TONGBAN_PORT: String(ports[i].pub),
    TONGBAN_PUBLIC_URL: `http://127.0.0.1:${ports[i].pub}`,
    TONGBAN_NODE_PORT: String(ports[i].node),
    TONGBAN_PG_SCHEMA: o.schema,
    TONGBAN_REDIS_PREFIX: o.redisPrefix,
    TONGBAN_REPLICA_ID: o.replicaId,
    TONGBAN_CATALOG_DIR: o.catalogDir,
  }
}
