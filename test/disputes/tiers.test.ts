// Disputes across tiers (docs/disputes.md "Across tiers"): a Nanjing consumer (nj-housing at
// the city node 320100) verifies a person with the province's identity resource (320000),
// relayed; it disputes the answer at its own node; the dispute travels to the province as a
// queued message, the province's provider (公安厅) finds it in its inbox and corrects; the
// resolution comes back, the city's copy shows it and the department is told there. A county
// node (Jiangning 320115) below the city disputes through it. Three real nodes, each with its
// own PostgreSQL schema, Redis prefix and BullMQ queues, mutual TLS on loopback; the city
// reaches the province through a TCP proxy the test cuts (the owner down).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startNode, context, ROOT, type Harness } from '../helpers/harness.js'
import { catalogDir, entryFile, waitFor } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { digest, verifyEvidence } from '../../src/evidence/evidence.js'
import { AssertionSigner } from '../../src/tiers/assertion.js'
import { ulid } from '../../src/exchange/request-id.js'
import { samplePersons } from '../../dev/providers/population.js'

const JS = '320000'
const NJ = '320100'
const JN = '320115'
const DEPT = { police: '11320000014000120T', nj: '11320100MB00000342', jn: '11320115MB0000012H', sz: '11320500MB0000146K' }
const IDENTITY = '101001/00001'
const [PERSON, OTHER, THIRD, FOURTH, FIFTH] = samplePersons(5).map((p) => ({ idNumber: p.idNumber, name: p.name }))

const identity = entryFile('101001-00001.json')
identity.provider = { ...identity.provider, region: JS }
const dirs: Record<string, string> = { [JS]: catalogDir([identity], 'tiers-disputes'), [NJ]: catalogDir([], 'tiers-disputes'), [JN]: catalogDir([], 'tiers-disputes') }
const ports: Record<string, number> = { [JS]: await freePort(), [NJ]: await freePort(), [JN]: await freePort() }
const ownerLink = await startTcpProxy(ports[JS]) // Nanjing → province
const at = (port: number) => `https://127.0.0.1:${port}`
const tree = [
  { id: JS, tier: 'province', region: JS, parent: null, nodeUrl: at(ports[JS]) },
  { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: at(ports[NJ]) },
  { id: JN, tier: 'county', region: JN, parent: NJ, nodeUrl: at(ports[JN]) },
]
const nodeEnv = (id: string, tier: string, parent: string | null, topology: object[]) => ({
  env: {
    TONGBAN_NODE_ID: id,
    TONGBAN_NODE_REGION: id,
    TONGBAN_NODE_TIER: tier,
    TONGBAN_NODE_NAME: `disputes across tiers ${id}`,
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
const province = await startNode({ tag: 'tdisp_js', ...nodeEnv(JS, 'province', null, tree) })
const [city, county] = await Promise.all([
  startNode({ tag: 'tdisp_nj', ...nodeEnv(NJ, 'city', JS, tree.map((n) => (n.id === JS ? { ...n, nodeUrl: at(ownerLink.port) } : n))) }),
  startNode({ tag: 'tdisp_jn', ...nodeEnv(JN, 'county', NJ, tree) }),
])
t.teardown(async () => {
  await county.close()
  await city.close()
  await province.close()
  await ownerLink.close()
})

const tokens = {
  nj: await city.token('nj-housing'),
  jnAtCity: await city.token('jn-civil-affairs'),
  szAtProvince: await province.token('sz-civil-affairs'),
  police: await province.token('js-public-security'),
  policeAtCity: await city.token('js-public-security'),
  operator: await city.token('js-operator'),
  jnAtCounty: await county.token('jn-civil-affairs'),
}
const auth = (tok: string) => ({ authorization: `Bearer ${tok}` })
const verify = (h: Harness, tok: string, person: object) =>
  h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { ...auth(tok), ...context() }, payload: person })
const answered = async (h: Harness, tok: string, person: object) => {
  const res = await verify(h, tok, person)
  if (res.statusCode !== 200) throw new Error(`verify: ${res.statusCode} ${res.body}`)
  return { requestId: String(res.headers['tongban-request-id']), evidence: String(res.headers['tongban-evidence']), answer: res.body }
}
const fileAt = (h: Harness, tok: string, a: { requestId: string; evidence: string; answer: string }, items = ['match']) =>
  h.app.inject({
    method: 'POST',
    url: '/v1/disputes',
    headers: auth(tok),
    payload: { ...a, items, reason: 'FACT_MISMATCH', description: '申请人已于上月更正姓名，核验结果应为一致。' },
  })
const file = (a: { requestId: string; evidence: string; answer: string }, items = ['match']) => fileAt(city, tokens.nj, a, items)
const get = async (h: Harness, tok: string, id: string) => (await h.app.inject({ method: 'GET', url: `/v1/disputes/${id}`, headers: auth(tok) })).json()
const atCity = (id: string) => get(city, tokens.nj, id)
const ownerRows = (id: string) => province.query('SELECT id, consumer_department, origin_node, status FROM disputes WHERE id = $1', [id])
const legs = (h: Harness, messageId: string) => h.query('SELECT operation, decision FROM audit_records WHERE request_id = $1 ORDER BY time', [messageId])

let disputeId = ''

t.test('filed at the city for an answer relayed from the province: 202, forwarded, filed there with the same id', async (t) => {
  // Other departments get the same person's answer: through the relay at the city, and directly at the province.
  await answered(city, tokens.jnAtCity, PERSON)
  await answered(province, tokens.szAtProvince, PERSON)
  const a = await answered(city, tokens.nj, PERSON)

  const res = await file(a)
  t.equal(res.statusCode, 202, `recorded here, on its way to the owner: ${res.body}`)
  const d = res.json()
  t.match(d, { requestId: a.requestId, resource: IDENTITY, consumerDepartment: DEPT.nj, status: 'open', dueAt: null, delivery: { state: 'forwarding', lastError: null }, originNode: null })
  t.ok(res.headers['tongban-evidence'], 'the filing is audited at the city')
  disputeId = d.id

  await waitFor('the dispute at the province', async () => (await ownerRows(d.id)).length === 1)
  t.same(await ownerRows(d.id), [{ id: d.id, consumer_department: DEPT.nj, origin_node: NJ, status: 'open' }], 'the owner holds it under the same id, naming the origin')
  const atOwner = await get(province, tokens.police, d.id)
  t.match(atOwner, { providerDepartment: DEPT.police, consumerDepartment: DEPT.nj, consumerSystem: 'nj-housing', originNode: NJ, delivery: null, items: ['match'] })
  t.ok(atOwner.dueAt, 'the owner set the deadline')
  t.match(atOwner.subject, /^hmac-sha256:[0-9a-f]{64}$/, "the owner's own subject hash, from its own record")
  const [ownerRecord] = await province.query("SELECT subject FROM audit_records WHERE request_id = $1 AND operation IS DISTINCT FROM 'dispute.message.filed'", [a.requestId])
  t.equal(atOwner.subject, ownerRecord.subject, "the province's record of the relayed query names the subject")

  const inbox = (await province.app.inject({ method: 'GET', url: '/v1/disputes?as=provider&status=open', headers: auth(tokens.police) })).json().disputes
  t.same(inbox.map((x: { id: string }) => x.id), [d.id], "in the provider's inbox at the province")
  const notes = (await province.app.inject({ method: 'GET', url: '/v1/notifications', headers: auth(tokens.police) })).json().notifications
  t.ok(notes.some((n: { kind: string; link: string }) => n.kind === 'dispute' && n.link === `/v1/disputes/${d.id}`), 'and told of it')

  await waitFor('delivery confirmed at the city', async () => (await atCity(d.id)).delivery?.state === 'delivered')
  const back = await atCity(d.id)
  t.match(back, { status: 'open', providerDepartment: DEPT.police, dueAt: atOwner.dueAt, delivery: { state: 'delivered', ownerNode: JS, lastError: null } })
  t.same(back.history.map((e: { action: string }) => e.action), ['filed'])
  t.same((await legs(province, `${d.id}.dispute`)).map((r) => r.operation), ['dispute.message.filed'], 'the owner audits the leg')
  t.same(await legs(city, `${d.id}.dispute-accepted`), [{ operation: 'dispute.message.accepted', decision: 'allowed' }], 'and the city the answer')

  const twice = await file(a)
  t.equal(twice.statusCode, 409)
  t.equal(twice.json().code, 'DISPUTE_DUPLICATE', 'one dispute per answer and department, across tiers too')
})

t.test('the province corrects; the resolution comes back to the city copy and the department there is told', async (t) => {
  const copy = await city.app.inject({ method: 'POST', url: `/v1/disputes/${disputeId}/resolution`, headers: auth(tokens.policeAtCity), payload: { resolution: 'CONFIRMED', note: '核实无误' } })
  t.equal(copy.statusCode, 409, 'nobody resolves the copy at the city')
  t.equal(copy.json().code, 'DISPUTE_HELD_ELSEWHERE')

  const res = await province.app.inject({
    method: 'POST', url: `/v1/disputes/${disputeId}/resolution`, headers: auth(tokens.police),
    payload: { resolution: 'CORRECTED', note: '已更正户籍姓名。', effectiveFrom: '2026-12-01' },
  })
  t.equal(res.statusCode, 200, res.body)
  const told = res.json().consumersTold.map((c: { consumerDepartment: string }) => c.consumerDepartment)
  t.same(told, [DEPT.jn, DEPT.sz].sort(), 'consumers at the province and at the city (relayed) are found in its own audit log')
  t.notOk(told.includes(DEPT.nj), 'not the disputing department itself')

  await waitFor('the resolution at the city', async () => (await atCity(disputeId)).status === 'resolved')
  const d = await atCity(disputeId)
  t.match(d, { status: 'resolved', resolution: 'CORRECTED', resolutionText: { zh: '已更正' }, resolutionNote: '已更正户籍姓名。', effectiveFrom: '2026-12-01', resolvedBy: 'js-public-security', delivery: { state: 'delivered' } })
  t.same(d.history.map((e: { action: string }) => e.action), ['filed', 'resolved'])
  const certificates = [city.app.identity.cert.toString()]
  for (const step of d.history) {
    const v = verifyEvidence({ header: step.evidence, body: step.sealed, certificates, caCertificate: city.app.identity.caPem })
    t.ok(v.ok, `the city's ${step.action} step verifies with the city's certificate`)
  }
  t.match(JSON.parse(d.history[1].sealed), { action: 'resolved', resolution: 'CORRECTED', node: JS })
  const notes = (await city.app.inject({ method: 'GET', url: '/v1/notifications', headers: auth(tokens.nj) })).json().notifications
  t.ok(notes.some((n: { kind: string; link: string }) => n.kind === 'dispute-resolution' && n.link === `/v1/disputes/${disputeId}`), 'the disputing department is told at its own node')
  const owner = await get(province, tokens.police, disputeId)
  t.same(owner.history.map((e: { action: string }) => e.action), ['filed', 'resolved', 'consumers-told'])
  const ownerNotes = await province.query("SELECT count(*)::int AS n FROM notifications WHERE kind = 'dispute-resolution'")
  t.equal(ownerNotes[0].n, 0, 'not at the province, where the department does not live')
  t.same((await legs(city, `${disputeId}.dispute-resolved`)).map((r) => r.operation), ['dispute.message.resolved'])
})

t.test("the owner's rules refuse unknown items: the city shows the refusal, the department files again", async (t) => {
  const a = await answered(city, tokens.nj, OTHER)
  const res = await file(a, ['noSuchItem'])
  t.equal(res.statusCode, 202, 'the city cannot know the items of a resource it does not hold')
  const id = res.json().id
  await waitFor('the refusal at the city', async () => (await atCity(id)).delivery?.state === 'refused')
  t.match(await atCity(id), { status: 'refused', delivery: { state: 'refused', ownerNode: JS } })
  t.equal((await atCity(id)).delivery.lastError, `DISPUTE_UNKNOWN_ITEM@${JS}`, 'the owner\'s problem, shown at the city')
  t.same(await ownerRows(id), [], 'nothing is filed at the owner')

  const again = await file(a)
  t.equal(again.statusCode, 202, `a refused dispute does not block a corrected one: ${again.body}`)
  await waitFor('the corrected filing delivered', async () => (await atCity(again.json().id)).delivery?.state === 'delivered')
})

t.test('the owner down: retried, then failed with the last error; re-queued once it is back, delivered once', async (t) => {
  const a = await answered(city, tokens.nj, THIRD)
  await ownerLink.cut()
  t.teardown(() => ownerLink.restore())
  const res = await file(a)
  t.equal(res.statusCode, 202, 'the consumer is not kept waiting by the outage')
  const id = res.json().id
  await waitFor('the city giving up', async () => (await atCity(id)).delivery?.state === 'failed', 30_000)
  t.match(await atCity(id), { status: 'open', delivery: { state: 'failed', lastError: `HOP_UNAVAILABLE@${JS}` } })
  t.equal((await atCity(id)).delivery.lastError, `HOP_UNAVAILABLE@${JS}`, 'exactly the code and the node')
  t.same(await city.query('SELECT state, attempts FROM application_messages WHERE id = $1', [`${id}.dispute`]), [{ state: 'failed', attempts: 5 }], 'five attempts with backoff')

  const stranger = await city.app.inject({ method: 'POST', url: `/v1/tiers/disputes/${id}/requeue`, headers: auth(tokens.jnAtCity) })
  t.equal(stranger.statusCode, 404, 'another department cannot re-queue it')
  t.equal(stranger.json().code, 'DISPUTE_NOT_FOUND')
  await ownerLink.restore()
  const requeued = await city.app.inject({ method: 'POST', url: `/v1/tiers/disputes/${id}/requeue`, headers: auth(tokens.nj) })
  t.equal(requeued.statusCode, 200, requeued.body)
  t.same(requeued.json(), { dispute: id, requeued: [`${id}.dispute`] })
  t.ok(requeued.headers['tongban-evidence'], 'the re-queue is audited')
  await waitFor('delivery after the re-queue', async () => (await atCity(id)).delivery?.state === 'delivered')
  t.equal((await ownerRows(id)).length, 1, 'filed once at the owner')
  const again = await city.app.inject({ method: 'POST', url: `/v1/tiers/disputes/${id}/requeue`, headers: auth(tokens.operator) })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'TIERS_NOTHING_TO_REQUEUE')
})

t.test('node channel: a redelivered dispute files nothing twice; edited ones and another department\'s are refused', async (t) => {
  const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')
  const asCity = new Agent({ connect: { ca: pem('ca.crt.pem'), cert: pem(`node/${NJ}.crt.pem`), key: pem(`node/${NJ}.key.pem`) } })
  t.teardown(() => asCity.close())
  const signer = new AssertionSigner(NJ, pem(`node/${NJ}.key.pem`), pem(`node/${NJ}.crt.pem`))
  const send = async (id: string, body: string, claims: Record<string, unknown>, signedBody = body) => {
    const link = signer.origin(JS, id, { ...(claims as { sub: string; dept: string; region: string }), purpose: null, case: null, tgt: 'application-messages/dispute', bd: digest(signedBody) })
    const res = await request(`https://127.0.0.1:${ports[JS]}/v1/tiers/applications/messages`, {
      method: 'POST', dispatcher: asCity, body, headers: { 'content-type': 'application/json', 'tongban-request-id': id, 'tongban-assertion': link },
    })
    return { status: res.statusCode, json: JSON.parse(await res.body.text()) }
  }

  const id = `${disputeId}.dispute`
  const [held] = await city.query('SELECT body, claims FROM application_messages WHERE id = $1', [id])
  const again = await send(id, held.body, held.claims)
  t.equal(again.status, 200, JSON.stringify(again.json))
  t.same(again.json, { message: id, state: 'duplicate' }, 'the owner recognises the dispute id')
  t.equal((await ownerRows(disputeId)).length, 1)
  const filedSteps = await province.query("SELECT count(*)::int AS n FROM dispute_events WHERE dispute_id = $1 AND action = 'filed'", [disputeId])
  t.equal(filedSteps[0].n, 1, 'filed once')
  t.equal((await atCity(disputeId)).status, 'resolved', 'the city copy is unchanged')

  const edited = held.body.replace('"FACT_MISMATCH"', '"OTHER"')
  const tampered = await send(id, edited, held.claims, held.body)
  t.equal(tampered.status, 401)
  t.match(tampered.json.detail, /body is not the one the originating node signed/)

  // A dispute of nj-housing's answer, asserted for another department of the city's division
  // (Jiangning civil affairs, which received the same person's data, but in another answer).
  const stolen = JSON.parse(held.body)
  const otherId = ulid()
  const forged = JSON.stringify({ ...stolen, id: `${otherId}.dispute`, dispute: otherId, at: new Date().toISOString() })
  const res = await send(`${otherId}.dispute`, forged, { ...held.claims, sub: 'jn-civil-affairs', dept: DEPT.jn, region: '320115' })
  t.equal(res.status, 200, JSON.stringify(res.json))
  t.same(res.json, { message: `${otherId}.dispute`, state: 'refused' })
  t.same(await ownerRows(otherId), [], 'nothing filed for a department that did not receive the answer')
  const [refusal] = await province.query('SELECT body FROM application_messages WHERE id = $1', [`${otherId}.dispute-refused`])
  t.equal(JSON.parse(refusal.body).problem.code, 'DISPUTE_NOT_YOUR_ANSWER', 'the refusal names why')

  const wrongTopic = JSON.stringify({ ...stolen, id: `${otherId}.dispute`, application: otherId, at: new Date().toISOString() })
  const mixed = await send(`${otherId}.dispute`, wrongTopic, held.claims)
  t.equal(mixed.status, 400)
  t.equal(mixed.json.code, 'TIERS_MESSAGE_INVALID', 'one thread per message, of its kind\'s topic')
})

t.test('three tiers: a county consumer disputes through Nanjing; with the owner down the city gives up and tells the county; re-queued there, delivered once', async (t) => {
  const atCounty = (id: string) => get(county, tokens.jnAtCounty, id)
  const first = await fileAt(county, tokens.jnAtCounty, await answered(county, tokens.jnAtCounty, FOURTH))
  t.equal(first.statusCode, 202, first.body)
  const firstId = first.json().id
  await waitFor('delivery through the city', async () => (await atCounty(firstId)).delivery?.state === 'delivered')
  t.same(await ownerRows(firstId), [{ id: firstId, consumer_department: DEPT.jn, origin_node: JN, status: 'open' }], 'filed at the province for the county')
  t.same((await legs(city, `${firstId}.dispute`)).map((r) => r.operation), ['dispute.message.filed'], 'the city audits the leg it passed on')

  // Messages to the county about it, handed over by Nanjing (its only neighbour): the owner's
  // link 0 and Nanjing's hop link, as the real path builds them.
  const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')
  const asCity = new Agent({ connect: { ca: pem('ca.crt.pem'), cert: pem(`node/${NJ}.crt.pem`), key: pem(`node/${NJ}.key.pem`) } })
  t.teardown(() => asCity.close())
  const signers = { [JS]: new AssertionSigner(JS, pem(`node/${JS}.key.pem`), pem(`node/${JS}.crt.pem`)), [NJ]: new AssertionSigner(NJ, pem(`node/${NJ}.key.pem`), pem(`node/${NJ}.crt.pem`)) }
  const toCounty = async (from: string, kind: string, extra: object) => {
    const mid = `${firstId}.${kind}`
    const body = JSON.stringify({ v: 1, id: mid, kind, dispute: firstId, resource: IDENTITY, origin: JN, from, to: JN, at: new Date().toISOString(), ...extra })
    // Nanjing vouches for its own division only: its made-up resolution is signed as the city's.
    const who = from === JS ? { sub: 'js-public-security', region: JS } : { sub: `node:${NJ}`, region: NJ }
    const claims = { ...who, dept: DEPT.police, purpose: null, case: null, tgt: `application-messages/${kind}`, bd: digest(body) }
    const link0 = from === JS ? signers[JS].origin(NJ, mid, claims) : signers[NJ].origin(JN, mid, claims)
    const chain = from === JS ? `${link0}, ${signers[NJ].hop(JN, mid, link0)}` : link0
    const res = await request(`https://127.0.0.1:${ports[JN]}/v1/tiers/applications/messages`, {
      method: 'POST', dispatcher: asCity, body, headers: { 'content-type': 'application/json', 'tongban-request-id': mid, 'tongban-assertion': chain },
    })
    return { status: res.statusCode, json: JSON.parse(await res.body.text()) }
  }
  const resolution = { resolution: 'REJECTED', note: '不予受理', effectiveFrom: null, resolvedAt: new Date().toISOString(), resolvedBy: 'js-public-security' }
  const byCity = await toCounty(NJ, 'dispute-resolved', { resolution })
  t.equal(byCity.status, 403, JSON.stringify(byCity.json))
  t.equal(byCity.json.code, 'DISPUTE_NOT_OWNER', 'a node that does not hold the resource cannot resolve it')
  const bogus = await toCounty(JS, 'dispute-resolved', { resolution: { ...resolution, resolution: 'MAYBE' } })
  t.equal(bogus.status, 400)
  t.equal(bogus.json.code, 'TIERS_MESSAGE_INVALID', 'a resolution without a valid content')
  const redelivered = await toCounty(JS, 'dispute-accepted', { accepted: { providerDepartment: DEPT.nj, dueAt: '2030-01-01T00:00:00.000Z', createdAt: new Date().toISOString() } })
  t.same(redelivered.json, { message: `${firstId}.dispute-accepted`, state: 'duplicate' }, 'an accepted dispute is accepted once')
  t.match(await atCounty(firstId), { status: 'open', providerDepartment: DEPT.police, delivery: { state: 'delivered', ownerNode: JS } }, 'the copy is unchanged')
  t.not((await atCounty(firstId)).dueAt, '2030-01-01T00:00:00.000Z')

  const a = await answered(county, tokens.jnAtCounty, FIFTH)
  await ownerLink.cut()
  t.teardown(() => ownerLink.restore())
  const res = await fileAt(county, tokens.jnAtCounty, a)
  t.equal(res.statusCode, 202)
  const id = res.json().id
  await waitFor('the failure reported back to the county', async () => (await atCounty(id)).delivery?.state === 'failed', 30_000)
  t.match(await atCounty(id), { status: 'open', delivery: { state: 'failed', ownerNode: null, lastError: `HOP_UNAVAILABLE@${JS}` } })
  t.equal((await atCounty(id)).delivery.lastError, `HOP_UNAVAILABLE@${JS}`, 'the code where it arose')
  t.same(await city.query('SELECT state, attempts FROM application_messages WHERE id = $1', [`${id}.dispute`]), [{ state: 'failed', attempts: 5 }], 'Nanjing tried five times with backoff')
  const told = await county.query('SELECT operation FROM audit_records WHERE request_id LIKE $1', [`${id}.dispute-undeliverable.%`])
  t.same(told.map((r) => r.operation), ['dispute.message.undeliverable'], 'and told the county by a dispute-undeliverable message, audited there')

  await ownerLink.restore()
  const requeued = await county.app.inject({ method: 'POST', url: `/v1/tiers/disputes/${id}/requeue`, headers: auth(tokens.jnAtCounty) })
  t.equal(requeued.statusCode, 200, requeued.body)
  await waitFor('delivery after the re-queue', async () => (await atCounty(id)).delivery?.state === 'delivered')
  t.equal((await ownerRows(id)).length, 1, 'filed once at the owner')
})
