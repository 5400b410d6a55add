// Four tiers end to end: a Jiangning county node (320115) → Nanjing city (320100) → Jiangsu
// province (320000), each with its own PostgreSQL schema, Redis prefix, catalogue and
// providers, talking mutual TLS on loopback with certificates of the dev PKI. Between the
// county and Nanjing sits a TCP proxy the test can cut or slow down (a dead or slow parent).
import t, { type Test } from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import autocannon from 'autocannon'
import { startNode, context, ROOT, type Harness } from '../helpers/harness.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { catalogDir, entryFile, waitFor } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { person, samplePersons } from '../../dev/providers/population.js'
import { decodeEvidence, digest, verifyEvidence } from '../../src/evidence/evidence.js'
import { AssertionSigner, type ConsumerClaims } from '../../src/tiers/assertion.js'

const JS = '320000'
const NJ = '320100'
const JN = '320115'
const JN_DEPT = '11320115MB0000012H'
const COUNTY_CODE = '101001/00115'

// ---- catalogues: the province owns identity (and a conditional and a not-shared resource),
// Nanjing owns nothing, Jiangning owns one resource of its own ----
const identity = entryFile('101001-00001.json')
identity.provider = { ...identity.provider, region: JS }
const countyEntry = {
  ...structuredClone(identity),
  code: COUNTY_CODE,
  name: '江宁区居民身份核验（区级）',
  provider: { name: '南京市江宁区民政局', code: JN_DEPT, region: JN },
  related: undefined,
  service: { ...identity.service, verifyService: undefined },
}
const dirs: Record<string, string> = {
  // Provider pinned to the Jiangsu natural resources department, who decides applications below.
  [JS]: catalogDir([identity, { ...entryFile('103002-00002.json'), provider: { name: '江苏省自然资源厅', code: '11320000MB0000091R', region: JS } }, entryFile('301002-00001.json')], 'tiers'),
  [NJ]: catalogDir([], 'tiers'),
  [JN]: catalogDir([countyEntry], 'tiers'),
}

// ---- the three nodes ----
const ports: Record<string, number> = { [JS]: await freePort(), [NJ]: await freePort(), [JN]: await freePort() }
// Between the county and Nanjing: a proxy the tests cut or slow down.
const proxy = await startTcpProxy(ports[NJ])
const at = (port: number) => `https://127.0.0.1:${port}`
const tree = [
  { id: JS, tier: 'province', region: JS, parent: null, nodeUrl: at(ports[JS]) },
  { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: at(ports[NJ]) },
  { id: JN, tier: 'county', region: JN, parent: NJ, nodeUrl: at(ports[JN]) },
]
const nodeEnv = (id: string, tier: string, parent: string | null, topology: object[], extra: Record<string, string> = {}) => ({
  env: {
    TONGBAN_NODE_ID: id,
    TONGBAN_NODE_REGION: id,
    TONGBAN_NODE_TIER: tier,
    TONGBAN_NODE_NAME: `tiers test ${id}`,
    TONGBAN_NODE_PARENT: parent ?? '',
    TONGBAN_TOPOLOGY: JSON.stringify(topology),
    TONGBAN_NODE_PORT: String(ports[id]),
    TONGBAN_CATALOG_DIR: dirs[id],
    TONGBAN_SYNC_BACKOFF_MS: '100',
    ...extra,
  },
})
const province = await startNode({ tag: 'tiers_js', ...nodeEnv(JS, 'province', null, tree) })
const [city, county] = await Promise.all([
  startNode({ tag: 'tiers_nj', ...nodeEnv(NJ, 'city', JS, tree) }),
  startNode({
    tag: 'tiers_jn',
    // The county reaches Nanjing through the proxy; short limits so the failure tests are quick.
    ...nodeEnv(JN, 'county', NJ, tree.map((n) => (n.id === NJ ? { ...n, nodeUrl: at(proxy.port) } : n)), {
      TONGBAN_HOP_TIMEOUT_MS: '3000',
      TONGBAN_HOP_MAX_CONCURRENT: '2',
      TONGBAN_BREAKER_FAILURES: '2',
      TONGBAN_BREAKER_OPEN_MS: '1500',
    }),
  }),
])
t.teardown(async () => {
  await county.close()
  await city.close()
  await province.close()
  await proxy.close()
})

const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')
const caPem = pem('ca.crt.pem')
const nodeCerts = [JS, NJ, JN].map((id) => pem(`node/${id}.crt.pem`))

const tokens = {
  jn: await county.token('jn-civil-affairs'),
  jnAdmin: await county.token('js-catalog-admin'),
  nj: await city.token('nj-housing'),
  jsAdmin: await province.token('js-catalog-admin'),
  jsNr: await province.token('js-natural-resources'),
}

const p0 = person(0)
const subject = { idNumber: p0.idNumber, name: p0.name }
const query = (h: Harness, token: string, url: string, payload: object = subject, extra: Record<string, string> = {}) =>
  h.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}`, ...context(extra) }, payload })
const resource = (code: string, op: string) => `/v1/resources/${encodeURIComponent(code)}/${op}`
const split = (v: unknown) => String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean)
const evidenceOf = (res: { headers: Record<string, unknown> }) => [String(res.headers['tongban-evidence'] ?? ''), ...split(res.headers['tongban-evidence-chain'])].filter(Boolean)
const catalogAt = async (h: Harness, token: string, qs = '') =>
  (await h.app.inject({ method: 'GET', url: `/v1/tiers/catalog/resources${qs}`, headers: { authorization: `Bearer ${token}` } })).json().resources as Array<Record<string, any>>

/** Every evidence of an answer verifies over its body; returns the records, first hop first. */
function verifyAll(t: Test, res: { body: string; headers: Record<string, unknown> }) {
  return evidenceOf(res).map((header) => {
    const v = verifyEvidence({ header, body: res.body, certificates: nodeCerts, caCertificate: caPem })
    t.ok(v.ok, `evidence of node ${v.ok ? v.evidence.record.node : '?'} verifies${v.ok ? '' : `: ${v.reason}`}`)
    return decodeEvidence(header).record
  })
}

t.test('catalogue sync: the county resource is published up to Nanjing and the province', async (t) => {
  await waitFor('the county resource at the province', async () => (await catalogAt(province, tokens.jsAdmin, `?node=${JN}`)).some((r) => r.code === COUNTY_CODE))
  const atProvince = (await catalogAt(province, tokens.jsAdmin)).find((r) => r.code === COUNTY_CODE)!
  t.match(atProvince, { node: JN, via: NJ, status: 'active', name: countyEntry.name, provider: { region: JN } })
  t.notOk(atProvince.service?.upstream, 'upstream addresses stay inside the owning node')
  const own = (await catalogAt(province, tokens.jsAdmin)).find((r) => r.code === '101001/00001')!
  t.match(own, { node: JS, via: null }, 'the province lists its own resources beside those below it')
  const atCity = (await catalogAt(city, tokens.nj)).find((r) => r.code === COUNTY_CODE)
  t.match(atCity, { node: JN, via: JN })
  const top = (await province.app.inject({ method: 'GET', url: '/v1/tiers/topology', headers: { authorization: `Bearer ${tokens.jsAdmin}` } })).json()
  t.same(top.below.map((n: { id: string; via: string }) => [n.id, n.via]).sort(), [[NJ, NJ], [JN, NJ]], 'the province knows the nodes below it')
})

t.test('relay up: a county consumer queries the province identity resource through Nanjing', async (t) => {
  const res = await query(county, tokens.jn, resource('101001/00001', 'verify'))
  t.equal(res.statusCode, 200, `served: ${res.body}`)
  t.same(res.json(), { match: true })
  const records = verifyAll(t, res)
  t.same(records.map((r) => r.node), [JN, NJ, JS], 'Tongban-Evidence is the county leg; the chain lists Nanjing, then the owner')
  const rid = res.headers['tongban-request-id']
  for (const r of records) {
    t.equal(r.requestId, rid, `node ${r.node}: the same request id`)
    t.same(r.consumer, { department: JN_DEPT, system: 'jn-civil-affairs', region: JN }, `node ${r.node}: the consumer, as the origin asserted it`)
    t.match(r, { resource: '101001/00001', operation: 'verify', purpose: 'SA-01', caseId: 'JN-2026-1000', decision: 'allowed' })
    t.equal(r.responseDigest, digest(res.body))
  }
  t.ok(records[2].subject && records[0].subject, 'the subject is recorded as its keyed hash at the owner and at the origin')
  for (const [h, name] of [[county, JN], [city, NJ], [province, JS]] as const) {
    const rows = await h.query('SELECT decision, consumer_system, resource FROM audit_records WHERE request_id = $1', [rid])
    t.same(rows, [{ decision: 'allowed', consumer_system: 'jn-civil-affairs', resource: '101001/00001' }], `a sealed record of its leg at node ${name}`)
  }

  const outsider = await query(county, await county.token('nj-housing'), resource('101001/00001', 'verify'))
  t.equal(outsider.statusCode, 403)
  t.equal(outsider.json().code, 'TIERS_CONSUMER_OUTSIDE_NODE', 'the county relays for consumers of the county only')

  const viaVerify = await query(county, tokens.jn, '/v1/verify/identity', { idNumber: p0.idNumber, name: '错误姓名' })
  t.equal(viaVerify.statusCode, 200, 'verify/{service} is routed to the node that answers it for the caller\'s region')
  t.same(viaVerify.json(), { match: false })
  t.same(verifyAll(t, viaVerify).map((r) => r.node), [JN, NJ, JS])
})

t.test('keep-alive: relayed queries reuse the TLS connections between nodes', async (t) => {
  const jn = county.app.tiers.router!
  const nj = city.app.tiers.router!
  t.equal((await query(county, tokens.jn, resource('101001/00001', 'verify'))).statusCode, 200)
  const before = [jn.connectionsTo(NJ), nj.connectionsTo(JS)]
  t.ok(before[0] >= 1 && before[1] >= 1, `connections were opened (${before})`)
  for (let i = 0; i < 20; i++) {
    const res = await query(county, tokens.jn, resource('101001/00001', 'verify'))
    t.equal(res.statusCode, 200)
    t.equal(split(res.headers['tongban-evidence-chain']).length, 2)
  }
  // Sequential calls take the connection the last one left idle: no new TLS handshake.
  t.equal(jn.connectionsTo(NJ), before[0], 'county → Nanjing: no new connection for 20 relayed queries')
  t.equal(nj.connectionsTo(JS), before[1], 'Nanjing → province: no new connection for 20 relayed queries')
})

t.test('relayed over real HTTP under load: each request answered once, one record each', async (t) => {
  // The origin's relay step answers in a preHandler; the route behind it must not run as
  // well. It did when the hook's promise settled before the audit onSend had written the
  // answer: a second answer, ERR_HTTP_HEADERS_SENT, the node down (found by bench:tiers).
  // Nanjing relays to the province (the county is kept to two calls at a time for the
  // failure tests below).
  await city.app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(city.app.server.address() as { port: number }).port}`
  const r: any = await autocannon({
    url: `${base}/v1/verify/identity`, method: 'POST', connections: 8, duration: 2,
    headers: { authorization: `Bearer ${tokens.nj}`, 'content-type': 'application/json', ...context({ 'tongban-case-id': 'NJ-HTTP-LOAD' }) },
    body: JSON.stringify(subject),
  })
  t.comment(`autocannon: ${r.requests.total} requests, ${r['2xx']} 2xx, ${r.non2xx} non-2xx, ${r.errors} errors`)
  t.ok(r['2xx'] > 50, 'load went through')
  t.equal(r.non2xx + r.errors, 0, 'every answer 2xx, no broken connection')
  await new Promise((r) => setTimeout(r, 300)) // the last answers' records are being sealed
  const [row] = await city.query("SELECT count(*)::int AS n, count(DISTINCT request_id)::int AS ids FROM audit_records WHERE case_id = 'NJ-HTTP-LOAD'")
  t.equal(row.n, row.ids, 'one record per request id at Nanjing')
  t.ok(row.n >= r['2xx'] && row.n <= r['2xx'] + 8, `records (${row.n}) = answers (${r['2xx']}), up to the 8 in flight at the end`)
})

t.test('relay down: a Nanjing consumer queries the county resource', async (t) => {
  const res = await query(city, tokens.nj, resource(COUNTY_CODE, 'verify'))
  t.equal(res.statusCode, 200, 'served by the county')
  t.same(res.json(), { match: true })
  t.same(verifyAll(t, res).map((r) => r.node), [NJ, JN])
})

t.test('the owning node enforces the sharing rules; applications travel to it; its grant serves the consumer', async (t) => {
  const owner = await (async () => {
    for (const p of samplePersons(200)) {
      const r = await fetch(`${province.env.TONGBAN_UPSTREAM_NR_PROPERTY}/v1/property/verify`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idNumber: p.idNumber, name: p.name }),
      })
      if ((await r.json()).hasProperty) return p
    }
    throw new Error('no owner in the sample')
  })()
  const who = { idNumber: owner.idNumber, name: owner.name }

  const none = await query(county, tokens.jn, resource('301002/00001', 'query'), who)
  t.equal(none.statusCode, 403)
  t.equal(none.json().code, 'POLICY_SHARE_NONE', "the owner's refusal reaches the consumer")
  t.same(verifyAll(t, none).map((r) => [r.node, r.decision, r.reason]), [[JN, 'denied', 'POLICY_SHARE_NONE'], [NJ, 'denied', 'POLICY_SHARE_NONE'], [JS, 'denied', 'POLICY_SHARE_NONE']])

  const before = await query(county, tokens.jn, resource('103002/00002', 'query'), who)
  t.equal(before.statusCode, 403)
  t.equal(before.json().code, 'POLICY_NO_GRANT', 'conditional: refused without a grant of the owning node')

  const applied = await county.app.inject({
    method: 'POST',
    url: '/v1/applications',
    headers: { authorization: `Bearer ${tokens.jn}` },
    payload: {
      resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条：核对申请人家庭财产状况',
      validTo: new Date(Date.now() + 90 * 86400_000).toISOString(), dailyQuota: 10,
    },
  })
  // Applications travel as queued messages (test/tiers-applications.test.ts has the details).
  t.equal(applied.statusCode, 202, 'the application is recorded at the county and travels to the owning node')
  t.match(applied.json(), { consumerDepartment: JN_DEPT, consumerSystem: 'jn-civil-affairs', status: 'pending', delivery: { state: 'forwarding' } })
  const id = applied.json().id
  await waitFor('the application at the owning node', async () => (await province.query('SELECT 1 FROM applications WHERE id = $1', [id])).length === 1)
  const [stored] = await province.query('SELECT consumer_department, provider_department FROM applications WHERE id = $1', [id])
  t.same(stored, { consumer_department: JN_DEPT, provider_department: '11320000MB0000091R' }, 'the application is held by the owning node, under the same id')

  const decided = await province.app.inject({
    method: 'POST', url: `/v1/applications/${id}/decision`,
    headers: { authorization: `Bearer ${tokens.jsNr}` }, payload: { decision: 'approve', reason: '符合条件' },
  })
  t.equal(decided.statusCode, 200, 'the owning department approves it')
  const atCounty = async () => (await county.app.inject({ method: 'GET', url: `/v1/applications/${id}`, headers: { authorization: `Bearer ${tokens.jn}` } })).json()
  await waitFor('the decision back at the county', async () => (await atCounty()).status === 'approved')
  t.equal((await atCounty()).grantId, decided.json().grantId, "the county's copy names the owner's grant")

  const after = await query(county, tokens.jn, resource('103002/00002', 'query'), who)
  t.equal(after.statusCode, 200, 'served now')
  t.ok(Array.isArray(after.json().properties) && after.json().properties.length > 0, 'served under the grant of the owning department')
  const records = verifyAll(t, after)
  t.ok(records[2].grant, 'the owner records the grant it served under')
  t.notOk(records[0].grant || records[1].grant, 'the hops enforce nothing and name no grant')
})

t.test('node-to-node trust: mTLS peers, signed consumer assertions, forged ones refused', async (t) => {
  const countyCert = pem(`node/${JN}.crt.pem`)
  const countyKey = pem(`node/${JN}.key.pem`)
  const asCounty = new Agent({ connect: { ca: caPem, cert: countyCert, key: countyKey } })
  const asProvince = new Agent({ connect: { ca: caPem, cert: pem(`node/${JS}.crt.pem`), key: pem(`node/${JS}.key.pem`) } })
  const anonymous = new Agent({ connect: { ca: caPem } })
  t.teardown(() => Promise.all([asCounty.close(), asProvince.close(), anonymous.close()]).then(() => {}))

  const path = `/v1/tiers/relay/resources/${encodeURIComponent('101001/00001')}/verify`
  const body = JSON.stringify(subject)
  const claims = (b = body): ConsumerClaims => ({
    sub: 'jn-civil-affairs', dept: JN_DEPT, region: JN, purpose: 'SA-01', case: 'JN-2026-1001',
    tgt: `resources/${encodeURIComponent('101001/00001')}/verify`, bd: digest(b),
  })
  const genuine = new AssertionSigner(JN, countyKey, countyCert)
  let n = 0
  const send = async (port: number, agent: Agent, assertion: string | null, b = body, rid = `tiers-forge-${++n}-${Date.now()}`) => {
    const res = await request(`https://127.0.0.1:${port}${path}`, {
      method: 'POST', dispatcher: agent, body: b,
      headers: { 'content-type': 'application/json', 'tongban-request-id': rid, ...(assertion ? { 'tongban-assertion': assertion } : {}) },
    })
    const text = await res.body.text()
    return { status: res.statusCode, json: JSON.parse(text), headers: res.headers, rid }
  }
  const fresh = () => `tiers-forge-${++n}-${Date.now()}`

  let rid = fresh()
  const ok = await send(ports[NJ], asCounty, genuine.origin(NJ, rid, claims()), body, rid)
  t.equal(ok.status, 200, 'a genuine assertion of the county, over mTLS with its certificate, is served')
  t.ok(ok.headers['tongban-evidence'], 'with evidence')
  const replayed = await send(ports[NJ], asCounty, genuine.origin(NJ, rid, claims()), body, rid)
  t.equal(replayed.status, 200, 'a new assertion for the same request id is a new call')

  const missing = await send(ports[NJ], asCounty, null)
  t.equal(missing.status, 401)
  t.equal(missing.json.code, 'NODE_ASSERTION_INVALID')
  t.ok(missing.headers['tongban-evidence'], 'refusals on the node channel are sealed too')

  rid = fresh()
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  const forger = new AssertionSigner(JN, privateKey, countyCert)
  const forged = await send(ports[NJ], asCounty, forger.origin(NJ, rid, claims()), body, rid)
  t.equal(forged.status, 401)
  t.match(forged.json.detail, /bad signature/, 'signed with a key the certificate does not certify')

  rid = fresh()
  const [h, , s] = genuine.origin(NJ, rid, claims()).split('.')
  const widened = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(genuine.origin(NJ, rid, claims()).split('.')[1], 'base64url').toString()), dept: '11320000014000120T' })).toString('base64url')
  const tampered = await send(ports[NJ], asCounty, `${h}.${widened}.${s}`, body, rid)
  t.equal(tampered.status, 401, 'a consumer claim changed after signing')

  rid = fresh()
  const otherBody = await send(ports[NJ], asCounty, genuine.origin(NJ, rid, claims()), JSON.stringify({ ...subject, name: '张三' }), rid)
  t.equal(otherBody.status, 401)
  t.match(otherBody.json.detail, /body is not the one the originating node signed/)

  rid = fresh()
  const elsewhere = await send(ports[NJ], asCounty, genuine.origin(JS, rid, claims()), body, rid)
  t.equal(elsewhere.status, 401)
  t.match(elsewhere.json.detail, /addressed to 320000, not to this node/)

  rid = fresh()
  const overreach = await send(ports[NJ], asCounty, genuine.origin(NJ, rid, { ...claims(), region: JS, dept: '11320000MB0000091R' }), body, rid)
  t.equal(overreach.status, 401)
  t.match(overreach.json.detail, /node 320115 cannot vouch for a consumer of region 320000/, 'a county node speaks for county consumers only')

  rid = fresh()
  const assertion = genuine.origin(NJ, rid, claims())
  t.equal((await send(ports[NJ], asCounty, assertion, body, rid)).status, 200)
  const again = await send(ports[NJ], asCounty, assertion, body, rid)
  t.equal(again.status, 401)
  t.equal(again.json.code, 'NODE_ASSERTION_REPLAYED', 'an assertion is good for one call')

  rid = fresh()
  const stranger = await send(ports[JN], asProvince, new AssertionSigner(JS, pem(`node/${JS}.key.pem`), pem(`node/${JS}.crt.pem`)).origin(JN, rid, claims()), body, rid)
  t.equal(stranger.status, 403)
  t.equal(stranger.json.code, 'NODE_NOT_NEIGHBOUR', 'the province is not a neighbour of the county')

  await t.rejects(send(ports[NJ], anonymous, genuine.origin(NJ, fresh(), claims())), 'no client certificate: no TLS session')

  const publicPort = await city.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload: body })
  t.equal(publicPort.statusCode, 403)
  t.equal(publicPort.json().code, 'NODE_AUTH_REQUIRED', 'the relay routes are not served on the consumer port')

  const onlyTiers = await request(`https://127.0.0.1:${ports[NJ]}/v1/catalog/resources`, { dispatcher: asCounty })
  t.equal(onlyTiers.statusCode, 404, 'the node listener serves node routes only')
  await onlyTiers.body.dump()
})

t.test('catalogue sync: a resource retired at the county disappears at the province', async (t) => {
  const retired = await county.app.inject({ method: 'DELETE', url: `/v1/catalog/resources/${encodeURIComponent(COUNTY_CODE)}`, headers: { authorization: `Bearer ${tokens.jnAdmin}`, 'if-match': '*' } })
  t.equal(retired.statusCode, 200, 'retired at the county')
  await waitFor('the retirement at the province', async () => !(await catalogAt(province, tokens.jsAdmin)).some((r) => r.code === COUNTY_CODE))
  const all = (await catalogAt(province, tokens.jsAdmin, '?status=all')).find((r) => r.code === COUNTY_CODE)
  t.match(all, { node: JN, status: 'retired' }, 'listed as retired with ?status=all')
  t.notOk((await catalogAt(city, tokens.nj)).some((r) => r.code === COUNTY_CODE), 'gone at Nanjing too')
  const res = await query(city, tokens.nj, resource(COUNTY_CODE, 'verify'))
  t.equal(res.statusCode, 410, 'a query still reaches the owner, which answers it is retired')
  t.equal(res.json().code, 'RESOURCE_RETIRED')
})

t.test('failure: an unreachable parent is a 502 naming the hop', async (t) => {
  await proxy.cut()
  const res = await query(county, tokens.jn, resource('101001/00001', 'verify'))
  await proxy.restore()
  t.equal(res.statusCode, 502)
  t.match(res.json(), { code: 'HOP_UNAVAILABLE', hop: NJ })
  t.ok(res.headers['tongban-evidence'], 'the failure is audited at the county')
  const [row] = await county.query('SELECT decision, reason FROM audit_records WHERE request_id = $1', [res.headers['tongban-request-id']])
  t.same(row, { decision: 'failed', reason: 'HOP_UNAVAILABLE' })
  t.equal((await query(county, tokens.jn, resource('101001/00001', 'verify'))).statusCode, 200, 'back once the parent is')
})

t.test('failure: a slow parent times out (504), the county bounds its calls and opens the breaker', async (t) => {
  proxy.delay(10_000)
  const timed = async () => {
    const started = Date.now()
    const res = await query(county, tokens.jn, resource('101001/00001', 'verify'))
    return { status: res.statusCode, body: res.json(), ms: Date.now() - started, retryAfter: res.headers['retry-after'] }
  }
  const burst = await Promise.all([timed(), timed(), timed(), timed()])
  const by = (code: string) => burst.filter((r) => r.body.code === code)
  t.equal(by('HOP_TIMEOUT').length, 2, 'two calls in flight (the limit per next hop) time out')
  for (const r of by('HOP_TIMEOUT')) {
    t.match(r, { status: 504, body: { hop: NJ } })
    t.ok(r.ms >= 2950 && r.ms < 6000, `after the hop timeout of 3 s (${r.ms} ms)`)
  }
  t.equal(by('HOP_SATURATED').length, 2, 'the others are refused at once')
  for (const r of by('HOP_SATURATED')) t.ok(r.status === 503 && r.ms < 1000, `fast (${r.ms} ms)`)

  const open = await timed()
  t.equal(open.status, 503)
  t.match(open.body, { code: 'HOP_CIRCUIT_OPEN', hop: NJ })
  t.ok(Number(open.retryAfter) >= 1, 'with Retry-After')
  t.ok(open.ms < 1000, `an open breaker answers fast, not after the hop timeout (${open.ms} ms)`)
  const top = (await county.app.inject({ method: 'GET', url: '/v1/tiers/topology', headers: { authorization: `Bearer ${tokens.jn}` } })).json()
  t.match(top.hops.find((h: { hop: string }) => h.hop === NJ), { state: 'open' })
  const circuit = async () => {
    const text = (await county.app.inject({ method: 'GET', url: '/metrics' })).body
    return /tongban_upstream_circuit_state\{[^}]*upstream="node:320100"[^}]*\} (\d)/.exec(text)?.[1]
  }
  t.equal(await circuit(), '2', 'the open breaker shows in /metrics (upstream node:320100, 2 = open)')

  proxy.delay(0)
  await new Promise((r) => setTimeout(r, 1600))
  const probe = await timed()
  t.equal(probe.status, 200, 'after the pause a probe goes through and closes the breaker')
  t.equal((await timed()).status, 200)
  t.equal(await circuit(), '0', 'closed again in /metrics')
})
