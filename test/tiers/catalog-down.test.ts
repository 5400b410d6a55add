// The catalogue flowing down the tiers (docs/tiers.md §5): national 100000 → Jiangsu 320000
// → Nanjing 320100 → Jiangning 320115, four real nodes on mutual TLS. The national node
// holds identity and a tax resource, the province a conditional real-estate resource,
// Nanjing its own registry. The county sees them all with the node holding each, reads an
// entry, loses the tax resource once it is retired upstairs, and its application for the
// province's resource reaches the province.
import t from 'tap'
import { startNode, type Harness } from '../helpers/harness.js'
import { catalogDir, entryFile, waitFor } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'

const CN = '100000'
const JS = '320000'
const NJ = '320100'
const JN = '320115'
const JN_DEPT = '11320115MB0000012H'
const NR_DEPT = '11320000MB0000091R'
const IDENTITY = '101001/00001'
const TAX = '305001/00001'
const CONDITIONAL = '103002/00002'
const NJ_PROPERTY = '103002/00003'

const identity = { ...entryFile('101001-00001.json'), provider: { name: '公安部', code: '11100000000013338W', region: CN } }
const tax = { ...entryFile('305001-00001.json'), provider: { name: '国家税务总局', code: '11100000000013127D', region: CN } }
const dirs: Record<string, string> = {
  [CN]: catalogDir([identity, tax], 'tiers-down'),
  [JS]: catalogDir([{ ...entryFile('103002-00002.json'), provider: { name: '江苏省自然资源厅', code: NR_DEPT, region: JS } }], 'tiers-down'),
  [NJ]: catalogDir([entryFile('103002-00003.json')], 'tiers-down'),
  [JN]: catalogDir([], 'tiers-down'),
}

const ids = [CN, JS, NJ, JN]
const ports: Record<string, number> = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, await freePort()] as const)))
const at = (port: number) => `https://127.0.0.1:${port}`
const tree = [
  { id: CN, tier: 'national', region: CN, parent: null, nodeUrl: at(ports[CN]) },
  { id: JS, tier: 'province', region: JS, parent: CN, nodeUrl: at(ports[JS]) },
  { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: at(ports[NJ]) },
  { id: JN, tier: 'county', region: JN, parent: NJ, nodeUrl: at(ports[JN]) },
]
const nodeEnv = (id: string) => {
  const me = tree.find((n) => n.id === id)!
  return {
    tag: `tdown_${id}`,
    env: {
      TONGBAN_NODE_ID: id,
      TONGBAN_NODE_REGION: id,
      TONGBAN_NODE_TIER: me.tier,
      TONGBAN_NODE_NAME: `catalogue down ${id}`,
      TONGBAN_NODE_PARENT: me.parent ?? '',
      TONGBAN_TOPOLOGY: JSON.stringify(tree),
      TONGBAN_NODE_PORT: String(ports[id]),
      TONGBAN_CATALOG_DIR: dirs[id],
      TONGBAN_SYNC_BACKOFF_MS: '100',
      TONGBAN_MESSAGE_BACKOFF_MS: '200',
    },
  }
}
const national = await startNode(nodeEnv(CN))
const province = await startNode(nodeEnv(JS))
const [city, county] = await Promise.all([startNode(nodeEnv(NJ)), startNode(nodeEnv(JN))])
const nodes: Harness[] = [county, city, province, national]
t.teardown(async () => {
  for (const h of nodes) await h.close()
})

const jn = await county.token('jn-civil-affairs')
type Listed = { code: string; status: string; heldBy: { node: string; region: string; tier: string } }
const countyList = async (): Promise<Listed[]> => {
  const res = await county.app.inject({ method: 'GET', url: '/v1/catalog/resources', headers: { authorization: `Bearer ${jn}` } })
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json().resources
}

t.test('a county node sees the resources above and beside it, each with its holder', async (t) => {
  await waitFor('the national and provincial resources at the county', async () => {
    const codes = (await countyList()).map((r) => r.code)
    return [IDENTITY, TAX, CONDITIONAL, NJ_PROPERTY].every((c) => codes.includes(c))
  }, 30_000)
  const seen = (await countyList()).map((r) => [r.code, r.heldBy.node, r.heldBy.tier]).sort()
  t.same(seen, [[IDENTITY, CN, 'national'], [CONDITIONAL, JS, 'province'], [NJ_PROPERTY, NJ, 'city'], [TAX, CN, 'national']], 'the county sees every resource, none twice, each held by its node')

  const one = await county.app.inject({ method: 'GET', url: `/v1/catalog/resources/${encodeURIComponent(IDENTITY)}`, headers: { authorization: `Bearer ${jn}` } })
  t.equal(one.statusCode, 200, one.body)
  t.match(one.json(), { code: IDENTITY, status: 'active', heldBy: { node: CN, region: CN, tier: 'national' }, provider: { region: CN } }, 'the national entry answers at the county')
  t.notOk(JSON.stringify(one.json()).includes('upstream'), 'no upstream binding travels down')
  const twoSegments = await county.app.inject({ method: 'GET', url: `/v1/catalog/resources/${CONDITIONAL}`, headers: { authorization: `Bearer ${jn}` } })
  t.match(twoSegments.json(), { code: CONDITIONAL, heldBy: { node: JS, tier: 'province' } })

  const own = await national.app.inject({ method: 'GET', url: '/v1/catalog/resources', headers: { authorization: `Bearer ${await national.token('js-audit')}` } })
  t.match(own.json().resources.find((r: Listed) => r.code === IDENTITY), { heldBy: { node: CN, region: CN, tier: 'national' } }, 'own resources are held by this node')
  const none = await county.app.inject({ method: 'GET', url: `/v1/catalog/resources/${encodeURIComponent('999999/00001')}`, headers: { authorization: `Bearer ${jn}` } })
  t.equal(none.statusCode, 404)
  t.equal(none.json().code, 'RESOURCE_NOT_FOUND')
})

t.test('a resource retired upstairs disappears downstairs', async (t) => {
  const admin = await national.token('js-catalog-admin')
  const res = await national.app.inject({ method: 'DELETE', url: `/v1/catalog/resources/${encodeURIComponent(TAX)}`, headers: { authorization: `Bearer ${admin}`, 'if-match': '*' } })
  t.equal(res.statusCode, 200, res.body)
  await waitFor('the tax resource gone at the county', async () => !(await countyList()).some((r) => r.code === TAX), 30_000)
  t.ok((await countyList()).some((r) => r.code === IDENTITY), 'the other national resource stays')
  const gone = await county.app.inject({ method: 'GET', url: `/v1/catalog/resources/${encodeURIComponent(TAX)}`, headers: { authorization: `Bearer ${jn}` } })
  t.equal(gone.statusCode, 404, 'its entry no longer answers at the county')
  const stored = await county.query('SELECT count(*)::int AS n FROM tiers_upstream_resources WHERE code = $1', [TAX])
  t.equal(stored[0].n, 0, 'nor is it kept')
})

t.test('an application from the county for a provincial resource reaches its holder', async (t) => {
  const res = await county.app.inject({
    method: 'POST',
    url: '/v1/applications',
    headers: { authorization: `Bearer ${jn}` },
    payload: { resource: CONDITIONAL, items: ['properties'], purposes: ['SA-01'], basis: '最低生活保障家庭经济状况核对', validTo: new Date(Date.now() + 30 * 86_400_000).toISOString(), dailyQuota: 100 },
  })
  t.equal(res.statusCode, 202, res.body)
  const id = res.json().id
  await waitFor('the application at the province', async () => (await province.query('SELECT 1 FROM applications WHERE id = $1', [id])).length === 1, 30_000)
  const [row] = await province.query('SELECT consumer_department, provider_department, origin_node, status FROM applications WHERE id = $1', [id])
  t.same(row, { consumer_department: JN_DEPT, provider_department: NR_DEPT, origin_node: JN, status: 'pending' }, 'held by the province, for the county department')
  await waitFor('the county copy delivered', async () => (await county.query("SELECT 1 FROM applications WHERE id = $1 AND delivery = 'delivered' AND owner_node = $2", [id, JS])).length === 1, 30_000)
  t.pass('the county copy names the province as owner')
})
