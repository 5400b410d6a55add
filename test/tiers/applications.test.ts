// Applications across tiers as queued messages (docs/tiers.md §7): a Jiangning county consumer
// (320115) applies for a conditional resource of the province (320000) through Nanjing
// (320100). Three real nodes, each with its own PostgreSQL schema, Redis prefix and BullMQ
// queues, talking mutual TLS on loopback. Two TCP proxies the test can cut: county → Nanjing
// (the county's own next hop down) and Nanjing → province (the owner down).
import t from 'tap'
import net from 'node:net'
import { generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startNode, clearRedis, context, ROOT, type Harness } from '../helpers/harness.js'
import { catalogDir, entryFile, waitFor } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { samplePersons } from '../../dev/providers/population.js'
import { decodeEvidence, digest } from '../../src/evidence/evidence.js'
import { AssertionSigner } from '../../src/tiers/assertion.js'

const JS = '320000'
const NJ = '320100'
const JN = '320115'
const JN_DEPT = '11320115MB0000012H'
const NR_DEPT = '11320000MB0000091R'
const CONDITIONAL = '103002/00002'

const dirs: Record<string, string> = {
  [JS]: catalogDir([{ ...entryFile('103002-00002.json'), provider: { name: '江苏省自然资源厅', code: NR_DEPT, region: JS } }], 'tiers-apps'),
  [NJ]: catalogDir([], 'tiers-apps'),
  [JN]: catalogDir([], 'tiers-apps'),
}

const ports: Record<string, number> = { [JS]: await freePort(), [NJ]: await freePort(), [JN]: await freePort() }
const countyLink = await startTcpProxy(ports[NJ]) // county → Nanjing
const ownerLink = await startTcpProxy(ports[JS]) // Nanjing → province
const at = (port: number) => `https://127.0.0.1:${port}`
const tree = [
  { id: JS, tier: 'province', region: JS, parent: null, nodeUrl: at(ports[JS]) },
  { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: at(ports[NJ]) },
  { id: JN, tier: 'county', region: JN, parent: NJ, nodeUrl: at(ports[JN]) },
]
const via = (id: string, port: number) => tree.map((n) => (n.id === id ? { ...n, nodeUrl: at(port) } : n))
const nodeEnv = (id: string, tier: string, parent: string | null, topology: object[]) => ({
  env: {
    TONGBAN_NODE_ID: id,
    TONGBAN_NODE_REGION: id,
    TONGBAN_NODE_TIER: tier,
    TONGBAN_NODE_NAME: `applications test ${id}`,
    TONGBAN_NODE_PARENT: parent ?? '',
    TONGBAN_TOPOLOGY: JSON.stringify(topology),
    TONGBAN_NODE_PORT: String(ports[id]),
    TONGBAN_CATALOG_DIR: dirs[id],
    TONGBAN_SYNC_BACKOFF_MS: '100',
    TONGBAN_HOP_TIMEOUT_MS: '3000',
    // Quick retries: 300, 600, 1200, 2400 ms, then the message is given up (about 4.5 s).
    TONGBAN_MESSAGE_ATTEMPTS: '5',
    TONGBAN_MESSAGE_BACKOFF_MS: '300',
  },
})
const province = await startNode({ tag: 'tapps_js', ...nodeEnv(JS, 'province', null, tree) })
// The county keeps its schema on close: the restart test starts it again on the same one.
const startCounty = (schema?: string) => startNode({ tag: 'tapps_jn', schema, keepSchema: true, ...nodeEnv(JN, 'county', NJ, via(NJ, countyLink.port)) })
const [city, firstCounty] = await Promise.all([
  startNode({ tag: 'tapps_nj', ...nodeEnv(NJ, 'city', JS, via(JS, ownerLink.port)) }),
  startCounty(),
])
let county = firstCounty
t.teardown(async () => {
  await county.close()
  await province.query(`DROP SCHEMA IF EXISTS ${county.schema} CASCADE`)
  await clearRedis(county.config.redis.prefix)
  await city.close()
  await province.close()
  await countyLink.close()
  await ownerLink.close()
})

const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')
const tokens = {
  jn: await county.token('jn-civil-affairs'),
  jsNr: await province.token('js-natural-resources'),
}


const validTo = () => new Date(Date.now() + 90 * 86400_000).toISOString()
const apply = (extra: Record<string, unknown> = {}) =>
  county.app.inject({
    method: 'POST',
    url: '/v1/applications',
    headers: { authorization: `Bearer ${tokens.jn}` },
    payload: {
      resource: CONDITIONAL, items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条：核对申请人家庭财产状况',
      validTo: validTo(), dailyQuota: 10, ...extra,
    },
  })
const get = async (h: Harness, token: string, id: string) =>
  (await h.app.inject({ method: 'GET', url: `/v1/applications/${id}`, headers: { authorization: `Bearer ${token}` } })).json()
const atCounty = (id: string) => get(county, tokens.jn, id)
const decide = (id: string, payload: object) =>
  province.app.inject({ method: 'POST', url: `/v1/applications/${id}/decision`, headers: { authorization: `Bearer ${tokens.jsNr}` }, payload })
const ownerRows = (id: string) => province.query('SELECT id, consumer_department, consumer_system, origin_node, status FROM applications WHERE id = $1', [id])
const legRecords = (h: Harness, messageId: string) =>
  h.query("SELECT operation, decision, reason, consumer_system FROM audit_records WHERE request_id = $1 ORDER BY time", [messageId])

// A person with property, for the relayed query under the grant.
const owner = await (async () => {
  for (const p of samplePersons(200)) {
    const r = await fetch(`${province.env.TONGBAN_UPSTREAM_NR_PROPERTY}/v1/property/verify`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idNumber: p.idNumber, name: p.name }),
    })
    if ((await r.json()).hasProperty) return { idNumber: p.idNumber, name: p.name }
  }
  throw new Error('no owner in the sample')
})()
const queryConditional = () =>
  county.app.inject({ method: 'POST', url: `/v1/resources/${encodeURIComponent(CONDITIONAL)}/query`, headers: { authorization: `Bearer ${tokens.jn}`, ...context() }, payload: owner })

let approvedId = ''

t.test('apply at the county: recorded at once (202), arrives at the province owner with the same id', async (t) => {
  const res = await apply()
  t.equal(res.statusCode, 202, `accepted for delivery: ${res.body}`)
  const a = res.json()
  t.match(a, { consumerDepartment: JN_DEPT, consumerSystem: 'jn-civil-affairs', resource: CONDITIONAL, status: 'pending', delivery: { state: 'forwarding' }, originNode: null })
  t.match(a.id, /^[0-9A-Z]{26}$/)
  t.ok(res.headers['tongban-evidence'], 'the submission is audited at the county')
  const [countyRecord] = await county.query('SELECT operation, decision FROM audit_records WHERE request_id = $1', [res.headers['tongban-request-id']])
  t.same(countyRecord, { operation: 'application.submit', decision: 'allowed' })

  await waitFor('the application at the province', async () => (await ownerRows(a.id)).length === 1)
  t.same(await ownerRows(a.id), [{ id: a.id, consumer_department: JN_DEPT, consumer_system: 'jn-civil-affairs', origin_node: JN, status: 'pending' }], 'the owner holds it under the same id, naming the origin')
  const atOwner = await get(province, tokens.jsNr, a.id)
  t.match(atOwner, { providerDepartment: NR_DEPT, originNode: JN, delivery: null })
  t.ok(atOwner.dueAt, 'the owner set its decision deadline')
  // Scheduled just after the application is recorded (the row can be read a moment before).
  await waitFor('the deadline jobs at the owner', async () => Boolean(await province.app.jobs.deadlines.getJob(`escalation-${a.id}`)))
  t.ok(await province.app.jobs.deadlines.getJob(`escalation-${a.id}`), 'and started its deadline jobs as for a local application')

  await waitFor('delivery confirmed at the county', async () => (await atCounty(a.id)).delivery?.state === 'delivered')
  const back = await atCounty(a.id)
  t.match(back, { status: 'pending', ownerNode: JS, providerDepartment: NR_DEPT, dueAt: atOwner.dueAt, delivery: { state: 'delivered', attempts: 1, nextHop: NJ, lastError: null } })
  t.same(back.history.map((e: { action: string }) => e.action), ['submitted', 'delivered'])

  // Every hop sealed its leg of each message.
  t.same(await legRecords(city, `${a.id}.submit`), [{ operation: 'application.submit', decision: 'allowed', reason: null, consumer_system: 'jn-civil-affairs' }], 'Nanjing audits the submit leg')
  t.same((await legRecords(province, `${a.id}.submit`)).map((r) => r.operation), ['application.submit'], 'the owner audits the application it recorded')
  t.same((await legRecords(city, `${a.id}.accepted`)).map((r) => r.operation), ['application.accepted'])
  t.same((await legRecords(county, `${a.id}.accepted`)).map((r) => r.operation), ['application.accepted'], 'and the county the answer')
  approvedId = a.id
})

t.test('before approval the relayed query is refused; the province approves (narrowed); the county sees it and is served', async (t) => {
  const before = await queryConditional()
  t.equal(before.statusCode, 403)
  t.equal(before.json().code, 'POLICY_NO_GRANT', 'refused by the owner: no grant yet')

  const validToNarrow = new Date(Date.now() + 30 * 86400_000).toISOString()
  const decided = await decide(approvedId, { decision: 'approve', reason: '符合条件', dailyQuota: 5, validTo: validToNarrow })
  t.equal(decided.statusCode, 200, decided.body)
  const grantId = decided.json().grantId
  t.ok(grantId, 'the grant is the owner\'s')

  await waitFor('the decision at the county', async () => (await atCounty(approvedId)).status === 'approved')
  const a = await atCounty(approvedId)
  t.match(a, {
    status: 'approved', grantId, decisionReason: '符合条件', decidedBy: 'js-natural-resources', ownerNode: JS,
    granted: { items: ['properties'], dailyQuota: 5, validTo: validToNarrow },
    delivery: { state: 'delivered' },
  })
  t.ok(a.decidedAt)
  t.same(a.history.map((e: { action: string }) => e.action), ['submitted', 'delivered', 'approved'])
  // The leg's record is sealed as the county answers the hop, just after it applied the decision.
  await waitFor('the decision leg sealed at the county', async () => (await legRecords(county, `${approvedId}.decision`)).length > 0)
  t.same((await legRecords(county, `${approvedId}.decision`)).map((r) => [r.operation, r.consumer_system]), [['application.decision', 'js-natural-resources']], 'the decision leg is audited at the county')
  t.equal((await county.query('SELECT count(*)::int AS n FROM grants'))[0].n, 0, 'no grant is held at the county: the owner enforces')

  const after = await queryConditional()
  t.equal(after.statusCode, 200, `served under the owner's grant: ${after.body}`)
  const chain = String(after.headers['tongban-evidence-chain']).split(',').map((s) => decodeEvidence(s.trim()).record)
  t.equal(chain.at(-1)!.grant, grantId, 'the owner records the grant it served under')
})

t.test('a rejection travels back with its reason', async (t) => {
  const res = await apply()
  t.equal(res.statusCode, 202)
  const id = res.json().id
  await waitFor('the application at the province', async () => (await ownerRows(id)).length === 1)
  const decided = await decide(id, { decision: 'reject', reason: '用途与资源不符' })
  t.equal(decided.statusCode, 200)
  await waitFor('the rejection at the county', async () => (await atCounty(id)).status === 'rejected')
  t.match(await atCounty(id), { status: 'rejected', decisionReason: '用途与资源不符', grantId: null, granted: null, decidedBy: 'js-natural-resources' })

  const twice = await county.app.inject({
    method: 'POST', url: `/v1/applications/${id}/decision`, headers: { authorization: `Bearer ${await county.token('js-natural-resources')}` }, payload: { decision: 'approve' },
  })
  t.equal(twice.statusCode, 409, 'nobody decides the copy at the county')
  t.equal(twice.json().code, 'APPLICATION_HELD_ELSEWHERE')
})

t.test("the owner's rules refuse it: the refusal travels back", async (t) => {
  const res = await apply({ items: ['noSuchItem'] })
  t.equal(res.statusCode, 202, 'the county cannot know the items of a resource it does not hold')
  const id = res.json().id
  await waitFor('the refusal at the county', async () => (await atCounty(id)).delivery?.state === 'refused')
  t.match(await atCounty(id), { status: 'rejected', delivery: { state: 'refused', lastError: `APPLICATION_UNKNOWN_ITEM@${JS}` }, decidedBy: `node:${JS}` })
  t.same(await ownerRows(id), [], 'nothing is recorded at the owner')
})

t.test('a resource no node holds: the top of the path says so, the county shows the delivery failed', async (t) => {
  const res = await apply({ resource: '103002/09999' })
  t.equal(res.statusCode, 202)
  const id = res.json().id
  await waitFor('the failure at the county', async () => (await atCounty(id)).delivery?.state === 'failed')
  t.match(await atCounty(id), { status: 'pending', delivery: { state: 'failed', lastError: `RESOURCE_NOT_FOUND@${JS}` } })
  t.same((await city.query('SELECT state, attempts FROM application_messages WHERE id = $1', [`${id}.submit`])), [{ state: 'failed', attempts: 1 }], 'not retried: no route will appear by retrying')
  t.same((await legRecords(province, `${id}.submit`)).map((r) => [r.decision, r.reason]), [['denied', 'RESOURCE_NOT_FOUND']], 'the refusal is audited where it arose')
})

t.test('the county link down: stays forwarding with attempts and the error, delivered once it is back, exactly once', async (t) => {
  await countyLink.cut()
  const res = await apply()
  t.equal(res.statusCode, 202, 'the consumer is not kept waiting by the outage')
  const id = res.json().id
  await waitFor('a failed attempt', async () => ((await atCounty(id)).delivery?.attempts ?? 0) >= 2)
  t.match(await atCounty(id), { status: 'pending', delivery: { state: 'forwarding', lastError: `HOP_UNAVAILABLE@${NJ}` } })
  await countyLink.restore()
  await waitFor('delivery after the link is back', async () => (await atCounty(id)).delivery?.state === 'delivered')
  t.equal((await ownerRows(id)).length, 1)
  const events = await province.query("SELECT count(*)::int AS n FROM application_events WHERE application_id = $1 AND action = 'submitted'", [id])
  t.equal(events[0].n, 1, 'submitted once at the owner')
})

t.test('the county link down for longer: the county gives up, shows it failed; re-queued, delivered once', async (t) => {
  await countyLink.cut()
  const id = (await apply()).json().id
  await waitFor('the county giving up', async () => (await atCounty(id)).delivery?.state === 'failed')
  t.match(await atCounty(id), { status: 'pending', delivery: { state: 'failed', attempts: 5, lastError: `HOP_UNAVAILABLE@${NJ}` } })
  t.match((await atCounty(id)).history.map((e: { action: string }) => e.action), ['submitted', 'delivery-failed'])
  await countyLink.restore()
  const requeued = await county.app.inject({ method: 'POST', url: `/v1/tiers/applications/${id}/requeue`, headers: { authorization: `Bearer ${tokens.jn}` } })
  t.equal(requeued.statusCode, 200)
  t.ok(requeued.headers['tongban-evidence'], 'the re-queue is audited')
  await waitFor('delivery after the re-queue', async () => (await atCounty(id)).delivery?.state === 'delivered')
  t.match(await atCounty(id), { delivery: { attempts: 1, lastError: null } })
  t.equal((await ownerRows(id)).length, 1)
})

t.test('the owner down: the hop before it retries, gives up, the county shows it failed; an operator re-queues, delivered once', async (t) => {
  await ownerLink.cut()
  const res = await apply()
  const id = res.json().id
  await waitFor('the failure reported back to the county', async () => (await atCounty(id)).delivery?.state === 'failed', 30_000)
  const failed = await atCounty(id)
  t.match(failed, { status: 'pending', delivery: { state: 'failed' } })
  t.equal(failed.delivery.lastError, `HOP_UNAVAILABLE@${JS}`, 'the code at the node where it arose, once (not also the hop that reported it)')
  const [held] = await city.query('SELECT state, attempts FROM application_messages WHERE id = $1', [`${id}.submit`])
  t.same(held, { state: 'failed', attempts: 5 }, 'Nanjing tried five times with backoff')
  t.same(await ownerRows(id), [])

  const stranger = await county.app.inject({ method: 'POST', url: `/v1/tiers/applications/${id}/requeue`, headers: { authorization: `Bearer ${await county.token('nj-housing')}` } })
  t.equal(stranger.statusCode, 404, 'another department cannot re-queue it')

  await ownerLink.restore()
  const requeued = await county.app.inject({ method: 'POST', url: `/v1/tiers/applications/${id}/requeue`, headers: { authorization: `Bearer ${tokens.jn}` } })
  t.equal(requeued.statusCode, 200, requeued.body)
  t.same(requeued.json().requeued, [`${id}.submit`])
  await waitFor('delivery after the re-queue', async () => (await atCounty(id)).delivery?.state === 'delivered')
  t.equal((await ownerRows(id)).length, 1, 'held once at the owner')
  const again = await county.app.inject({ method: 'POST', url: `/v1/tiers/applications/${id}/requeue`, headers: { authorization: `Bearer ${tokens.jn}` } })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'TIERS_NOTHING_TO_REQUEUE')
})

t.test('node channel: a redelivered message creates nothing twice; replayed, forged and non-neighbour ones are refused', async (t) => {
  const asCity = new Agent({ connect: { ca: pem('ca.crt.pem'), cert: pem(`node/${NJ}.crt.pem`), key: pem(`node/${NJ}.key.pem`) } })
  const asCounty = new Agent({ connect: { ca: pem('ca.crt.pem'), cert: pem(`node/${JN}.crt.pem`), key: pem(`node/${JN}.key.pem`) } })
  t.teardown(() => Promise.all([asCity.close(), asCounty.close()]).then(() => {}))
  const citySigner = new AssertionSigner(NJ, pem(`node/${NJ}.key.pem`), pem(`node/${NJ}.crt.pem`))
  const send = async (port: number, agent: Agent, id: string, body: string, assertion: string) => {
    const res = await request(`https://127.0.0.1:${port}/v1/tiers/applications/messages`, {
      method: 'POST', dispatcher: agent, body, headers: { 'content-type': 'application/json', 'tongban-request-id': id, 'tongban-assertion': assertion },
    })
    return { status: res.statusCode, json: JSON.parse(await res.body.text()), evidence: res.headers['tongban-evidence'] }
  }

  // What Nanjing holds for the approved application: the exact body and the county's link.
  const id = `${approvedId}.submit`
  const [held] = await city.query('SELECT body, chain FROM application_messages WHERE id = $1', [id])
  const redeliver = () => `${held.chain}, ${citySigner.hop(JS, id, held.chain)}`
  const assertion = redeliver()
  const again = await send(ports[JS], asCity, id, held.body, assertion)
  t.equal(again.status, 200, JSON.stringify(again.json))
  t.same(again.json, { message: id, state: 'duplicate' }, 'the owner recognises the application id')
  t.equal((await ownerRows(approvedId)).length, 1)
  t.equal((await province.query("SELECT count(*)::int AS n FROM application_events WHERE application_id = $1 AND action = 'submitted'", [approvedId]))[0].n, 1, 'nothing created twice')
  t.equal((await atCounty(approvedId)).status, 'approved', 'the county copy is unchanged')

  const replayed = await send(ports[JS], asCity, id, held.body, assertion)
  t.equal(replayed.status, 401)
  t.equal(replayed.json.code, 'NODE_ASSERTION_REPLAYED', 'one assertion, one delivery')

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  const forger = new AssertionSigner(NJ, privateKey, pem(`node/${NJ}.crt.pem`))
  const forged = await send(ports[JS], asCity, id, held.body, `${held.chain}, ${forger.hop(JS, id, held.chain)}`)
  t.equal(forged.status, 401)
  t.equal(forged.json.code, 'NODE_ASSERTION_INVALID')
  t.match(forged.json.detail, /bad signature/)
  t.ok(forged.evidence, 'the refusal is sealed at the province')

  const changed = held.body.replace('"dailyQuota":10', '"dailyQuota":1000')
  const tampered = await send(ports[JS], asCity, id, changed, redeliver())
  t.equal(tampered.status, 401)
  t.match(tampered.json.detail, /body is not the one the originating node signed/)

  // A decision Nanjing makes up and signs as if it were the owner's message.
  const fake = JSON.stringify({ v: 1, id: `${approvedId}.decision`, kind: 'decision', application: approvedId, resource: CONDITIONAL, origin: JN, from: JS, to: JN, at: new Date().toISOString(), decision: { status: 'rejected', reason: 'x', decidedAt: null, decidedBy: null, grantId: null, granted: null } })
  const fakeLink = citySigner.origin(JN, `${approvedId}.decision`, { sub: 'node:320100', dept: NR_DEPT, region: NJ, purpose: null, case: null, tgt: 'application-messages/decision', bd: digest(fake) })
  const notOwner = await send(ports[JN], asCity, `${approvedId}.decision`, fake, fakeLink)
  t.equal(notOwner.status, 401)
  t.match(notOwner.json.detail, /not signed by the node that wrote the message/)
  t.equal((await atCounty(approvedId)).status, 'approved')

  const countySigner = new AssertionSigner(JN, pem(`node/${JN}.key.pem`), pem(`node/${JN}.crt.pem`))
  const direct = await send(ports[JS], asCounty, `${approvedId}.submit`, held.body, countySigner.origin(JS, `${approvedId}.submit`, { sub: 'jn-civil-affairs', dept: JN_DEPT, region: JN, purpose: null, case: null, tgt: 'application-messages/submit', bd: digest(held.body) }))
  t.equal(direct.status, 403)
  t.equal(direct.json.code, 'NODE_NOT_NEIGHBOUR', 'the county is not a neighbour of the province')

  const publicPort = await province.app.inject({ method: 'POST', url: '/v1/tiers/applications/messages', headers: { 'content-type': 'application/json' }, payload: held.body })
  t.equal(publicPort.statusCode, 403)
  t.equal(publicPort.json().code, 'NODE_AUTH_REQUIRED')
})

t.test('a restart of the county loses nothing: the queued submission goes out when the link is back', async (t) => {
  await countyLink.cut()
  const id = (await apply()).json().id
  await waitFor('a failed attempt', async () => ((await atCounty(id)).delivery?.attempts ?? 0) >= 1)
  const schema = county.schema
  await county.close()
  county = await startCounty(schema)
  await countyLink.restore()
  await waitFor('delivery after the restart', async () => (await atCounty(id)).delivery?.state === 'delivered')
  t.equal((await ownerRows(id)).length, 1, 'delivered once, by the restarted node')
  t.equal((await atCounty(id)).status, 'pending')
})
