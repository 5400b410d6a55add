// All four tiers (issue 4's cross-tier case): national 100000 → Jiangsu 320000 → Nanjing
// 320100 → Jiangning 320115, each its own process-local node with its own PostgreSQL schema,
// Redis prefix, catalogue and mTLS node listener. The national node holds identity, Nanjing
// its own real-estate registry, the province the provincial one. A Jiangning consumer
// verifies an identity three hops away at the national node and a property one hop away at
// Nanjing (the registry nearest the caller, not the province's).
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startNode, context, ROOT, type Harness } from '../helpers/harness.js'
import { catalogDir, entryFile, waitFor } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { person, type Person } from '../../dev/providers/population.js'
import { nanjingHoldingsOf } from '../../dev/providers/nanjing-property/app.js'
import { decodeEvidence, digest, verifyEvidence } from '../../src/evidence/evidence.js'
import { AssertionSigner, type ConsumerClaims } from '../../src/tiers/assertion.js'

const CN = '100000'
const JS = '320000'
const NJ = '320100'
const JN = '320115'
const JN_DEPT = '11320115MB0000012H'

// Identity held at the national node (its provider the Ministry of Public Security).
const identity = entryFile('101001-00001.json')
identity.provider = { name: '公安部', code: '11100000000013338W', region: CN }
const dirs: Record<string, string> = {
  [CN]: catalogDir([identity], 'tiers4'),
  [JS]: catalogDir([entryFile('103002-00001.json')], 'tiers4'),
  [NJ]: catalogDir([entryFile('103002-00003.json')], 'tiers4'),
  [JN]: catalogDir([], 'tiers4'),
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
    tag: `tiers4_${id}`,
    env: {
      TONGBAN_NODE_ID: id,
      TONGBAN_NODE_REGION: id,
      TONGBAN_NODE_TIER: me.tier,
      TONGBAN_NODE_NAME: `four tiers ${id}`,
      TONGBAN_NODE_PARENT: me.parent ?? '',
      TONGBAN_TOPOLOGY: JSON.stringify(tree),
      TONGBAN_NODE_PORT: String(ports[id]),
      TONGBAN_CATALOG_DIR: dirs[id],
      TONGBAN_SYNC_BACKOFF_MS: '100',
    },
  }
}
const national = await startNode(nodeEnv(CN))
const province = await startNode(nodeEnv(JS))
const [city, county] = await Promise.all([startNode(nodeEnv(NJ)), startNode(nodeEnv(JN))])
const nodes: Array<[string, Harness]> = [[JN, county], [NJ, city], [JS, province], [CN, national]]
t.teardown(async () => {
  for (const [, h] of nodes) await h.close()
})

const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')
const caPem = pem('ca.crt.pem')
const nodeCerts = ids.map((id) => pem(`node/${id}.crt.pem`))
const jn = await county.token('jn-civil-affairs')

const verify = (service: string, payload: object) =>
  county.app.inject({ method: 'POST', url: `/v1/verify/${service}`, headers: { authorization: `Bearer ${jn}`, ...context() }, payload })
const split = (v: unknown) => String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean)

/** Every evidence of an answer verifies over its body; returns the records, first hop first. */
function verifyAll(t: Test, res: { body: string; headers: Record<string, unknown> }) {
  const all = [String(res.headers['tongban-evidence'] ?? ''), ...split(res.headers['tongban-evidence-chain'])].filter(Boolean)
  return all.map((header) => {
    const v = verifyEvidence({ header, body: res.body, certificates: nodeCerts, caCertificate: caPem })
    t.ok(v.ok, `evidence of node ${v.ok ? v.evidence.record.node : '?'} verifies${v.ok ? '' : `: ${v.reason}`}`)
    return decodeEvidence(header).record
  })
}

t.test('catalogue sync reaches the national node', async (t) => {
  const admin = await national.token('js-audit')
  await waitFor('the Nanjing registry at the national node', async () => {
    const res = await national.app.inject({ method: 'GET', url: `/v1/tiers/catalog/resources?node=${NJ}`, headers: { authorization: `Bearer ${admin}` } })
    return res.json().resources?.some((r: { code: string }) => r.code === '103002/00003')
  })
  const res = await national.app.inject({ method: 'GET', url: '/v1/tiers/catalog/resources', headers: { authorization: `Bearer ${admin}` } })
  const seen = res.json().resources.map((r: { code: string; node: string; via: string | null }) => [r.code, r.node, r.via]).sort()
  t.same(seen, [['101001/00001', CN, null], ['103002/00001', JS, JS], ['103002/00003', NJ, JS]], 'the national node sees its own resource and every one below it, each through the province')
})

t.test('a Jiangning consumer verifies an identity held at the national node, three hops up', async (t) => {
  const p = person(3)
  const res = await verify('identity', { idNumber: p.idNumber, name: p.name })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { match: true })
  const records = verifyAll(t, res)
  t.same(records.map((r) => r.node), [JN, NJ, JS, CN], 'the evidence of every hop, the owner last')
  const rid = String(res.headers['tongban-request-id'])
  for (const r of records) {
    t.equal(r.requestId, rid, `node ${r.node}: the same request id`)
    t.same(r.consumer, { department: JN_DEPT, system: 'jn-civil-affairs', region: JN })
    t.match(r, { resource: '101001/00001', operation: 'verify', decision: 'allowed', responseDigest: digest(res.body) })
  }
  for (const [id, h] of nodes) {
    const rows = await h.query('SELECT decision, resource, subject IS NOT NULL AS hashed FROM audit_records WHERE request_id = $1', [rid])
    t.same(rows, [{ decision: 'allowed', resource: '101001/00001', hashed: true }], `node ${id} sealed its leg, the subject as its keyed hash`)
    const raw = await h.query('SELECT count(*)::int AS n FROM audit_records WHERE request_id = $1 AND record::text LIKE $2', [rid, `%${p.idNumber}%`])
    t.equal(raw[0].n, 0, `node ${id}: no raw id number in its record`)
  }

  const wrong = await verify('identity', { idNumber: p.idNumber, name: '错误姓名' })
  t.equal(wrong.statusCode, 200)
  t.same(wrong.json(), { match: false }, 'no match, from the national node')
  const bad = await verify('identity', { idNumber: '11010519491231002Y', name: p.name })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'INPUT_INVALID_ID_NUMBER', 'a bad check character is refused before anything leaves Jiangning')
  t.same(verifyAll(t, bad).map((r) => r.node), [JN], 'refused and audited at the origin only')
})

t.test('the same consumer verifies a property at Nanjing, the registry nearest it', async (t) => {
  let owner: Person | undefined
  for (let i = 0; !owner; i++) if (nanjingHoldingsOf(i).some((h) => h.usage === '住宅')) owner = person(i)
  const res = await verify('property', { idNumber: owner.idNumber, name: owner.name })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { hasProperty: true })
  const records = verifyAll(t, res)
  t.same(records.map((r) => [r.node, r.resource]), [[JN, '103002/00003'], [NJ, '103002/00003']], 'answered by 南京市不动产登记中心, one hop up; the province is not asked')
  const atProvince = await province.query('SELECT count(*)::int AS n FROM audit_records WHERE request_id = $1', [String(res.headers['tongban-request-id'])])
  t.equal(atProvince[0].n, 0, 'nothing of this call at the province')
})

t.test('a forged or short-cut assertion chain is refused by the national node', async (t) => {
  const body = JSON.stringify({ idNumber: person(3).idNumber, name: person(3).name })
  const tgt = `resources/${encodeURIComponent('101001/00001')}/verify`
  const claims: ConsumerClaims = { sub: 'jn-civil-affairs', dept: JN_DEPT, region: JN, purpose: 'SA-01', case: 'JN-2026-4000', tgt, bd: digest(body) }
  const asProvince = new Agent({ connect: { ca: caPem, cert: pem(`node/${JS}.crt.pem`), key: pem(`node/${JS}.key.pem`) } })
  t.teardown(() => asProvince.close())
  const send = async (assertion: string, rid: string) => {
    const res = await request(`${at(ports[CN])}/v1/tiers/relay/${tgt}`, {
      method: 'POST', dispatcher: asProvince, body,
      headers: { 'content-type': 'application/json', 'tongban-request-id': rid, 'tongban-assertion': assertion },
    })
    return { status: res.statusCode, json: (await res.body.json()) as { code?: string } }
  }
  // Jiangsu vouches for a consumer of Hangzhou (Zhejiang): outside its division.
  const provinceSigner = new AssertionSigner(JS, pem(`node/${JS}.key.pem`), pem(`node/${JS}.crt.pem`))
  let rid = `tiers4-forge-${Date.now()}-1`
  const outside = await send(provinceSigner.origin(CN, rid, { ...claims, region: '330106' }), rid)
  t.equal(outside.status, 401, 'a province may not vouch for a consumer of another province')
  t.equal(outside.json.code, 'NODE_ASSERTION_INVALID')
  // The same province may vouch for a consumer within its division (a county without a node of its own).
  rid = `tiers4-forge-${Date.now()}-1b`
  const within = await send(provinceSigner.origin(CN, rid, claims), rid)
  t.equal(within.status, 200, 'a consumer of Jiangning, vouched for by Jiangsu, is served')
  // Jiangning's genuine origin link, addressed to Nanjing, replayed by the province without the hops.
  const countySigner = new AssertionSigner(JN, pem(`node/${JN}.key.pem`), pem(`node/${JN}.crt.pem`))
  rid = `tiers4-forge-${Date.now()}-2`
  const short = await send(countySigner.origin(NJ, rid, claims), rid)
  t.equal(short.status, 401, 'a chain that skips hops is refused')
  t.match(short.json.code, /^NODE_ASSERTION_/)
})
