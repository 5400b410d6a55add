// POST /v1/verify/identity end to end: real PostgreSQL, Redis and identity provider.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { verifyEvidence, decodeEvidence, digest } from '../../src/evidence/evidence.js'
import { leafHash } from '../../src/evidence/merkle.js'
import { jcs } from '../../src/evidence/jcs.js'

const h = await startNode({ tag: 'verify' })
t.teardown(() => h.close())
const token = await h.token('jn-civil-affairs')
const p0 = person(0)
const p1 = person(1)

const verify = (payload: unknown, headers: Record<string, string> = context(), auth = token) =>
  h.app.inject({
    method: 'POST',
    url: '/v1/verify/identity',
    headers: { authorization: `Bearer ${auth}`, ...headers },
    payload: payload as object,
  })

const certs = [h.app.identity.certPem]

t.test('a matching person: {match: true}, nothing more, with evidence that verifies', async (t) => {
  const res = await verify({ idNumber: p0.idNumber, name: p0.name })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { match: true })
  t.equal(res.body, '{"match":true}', 'only the match item is returned')
  t.ok(res.headers['tongban-request-id'])
  const header = res.headers['tongban-evidence'] as string
  const v = verifyEvidence({ header, body: res.body, certificates: certs, caCertificate: h.app.identity.caPem })
  t.ok(v.ok, JSON.stringify(v))
  const ev = decodeEvidence(header)
  t.equal(ev.record.requestId, res.headers['tongban-request-id'])
  t.equal(ev.record.decision, 'allowed')
  t.equal(ev.record.resource, '101001/00001')
  t.equal(ev.record.purpose, 'SA-01')
  t.equal(ev.record.caseId, 'JN-2026-1000')
  t.equal(ev.record.responseDigest, digest(res.body))
  t.match(ev.record.subject, /^hmac-sha256:[0-9a-f]{64}$/)
  t.same(ev.record.consumer, { department: '11320115MB0000012H', system: 'jn-civil-affairs', region: '320115' })
  // The auditor's row is the consumer's evidence: same leaf, same checkpoint.
  const [row] = await h.query('SELECT leaf, record, chain, seq, idx FROM audit_records WHERE request_id = $1', [ev.record.requestId])
  t.equal(row.leaf, leafHash(jcs(ev.record)).toString('hex'))
  t.equal(Number(row.seq), ev.checkpoint.seq)
  t.equal(row.idx, ev.index)
  const [cp] = await h.query('SELECT root, sig FROM audit_checkpoints WHERE chain = $1 AND seq = $2', [row.chain, row.seq])
  t.equal(cp.root, ev.checkpoint.root)
  t.equal(cp.sig, ev.sig)
})

t.test('a wrong name: {match: false}', async (t) => {
  const res = await verify({ idNumber: p0.idNumber, name: p1.name === p0.name ? '王某某' : p1.name })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { match: false })
})

t.test('a retired county code is not refused (320124, Lishui before 2013)', async (t) => {
  const res = await verify({ idNumber: '320124197510200014', name: '张三' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { match: false })
})

t.test('domain validation refuses before the upstream, with stable codes', async (t) => {
  const cases: Array<[unknown, number, string]> = [
    [{ idNumber: '110105194912310020', name: '张三' }, 400, 'INPUT_INVALID_ID_NUMBER'],
    [{ idNumber: '32011519900307012', name: '张三' }, 400, 'INPUT_INVALID_ID_NUMBER'],
    [{ idNumber: '320115199013320122', name: '张三' }, 400, 'INPUT_INVALID_ID_NUMBER'],
    [{ idNumber: '990115199003070128', name: '张三' }, 400, 'INPUT_UNKNOWN_REGION'],
    [{ idNumber: 11010519491231, name: '张三' }, 400, 'INPUT_INVALID'],
    [{ idNumber: p0.idNumber }, 400, 'INPUT_INVALID'],
    [{ idNumber: p0.idNumber, name: p0.name, extra: 1 }, 400, 'INPUT_INVALID'],
    [{ idNumber: p0.idNumber, name: '' }, 400, 'INPUT_INVALID'],
    [[p0.idNumber], 400, 'INPUT_INVALID'],
  ]
  for (const [payload, status, code] of cases) {
    const res = await verify(payload)
    t.equal(res.statusCode, status, JSON.stringify(payload))
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.equal(res.json().code, code, JSON.stringify(payload))
    t.equal(res.json().requestId, res.headers['tongban-request-id'])
    t.notMatch(res.body, /3201151990|1101051949|9901151990/, 'the problem does not echo the id number')
  }
})

t.test('hostile bodies: malformed JSON, __proto__, huge, wrong media type', async (t) => {
  const send = (payload: string, type = 'application/json') =>
    h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, 'content-type': type, ...context() }, payload })
  let res = await send('{"idNumber": ')
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'INPUT_MALFORMED_JSON')
  res = await send('{"__proto__": {"admin": true}, "idNumber": "11010519491231002X", "name": "张三"}')
  t.equal(res.statusCode, 400)
  res = await send(JSON.stringify({ idNumber: p0.idNumber, name: 'x'.repeat(200_000) }))
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'INPUT_TOO_LARGE')
  res = await send('idNumber=1', 'text/plain')
  t.equal(res.statusCode, 415)
  t.equal(res.json().code, 'INPUT_UNSUPPORTED_MEDIA_TYPE')
  res = await send('')
  t.equal(res.statusCode, 400)
})

t.test('purpose and case id are required and checked', async (t) => {
  const body = { idNumber: p0.idNumber, name: p0.name }
  const cases: Array<[Record<string, string>, string]> = [
    [{ 'tongban-case-id': 'JN-1' }, 'INPUT_PURPOSE_MISSING'],
    [{ 'tongban-purpose': 'NOPE-99', 'tongban-case-id': 'JN-1' }, 'INPUT_PURPOSE_UNKNOWN'],
    [{ 'tongban-purpose': '低保', 'tongban-case-id': 'JN-1' }, 'INPUT_PURPOSE_INVALID'],
    [{ 'tongban-purpose': 'SA-01' }, 'INPUT_CASE_ID_MISSING'],
    [{ 'tongban-purpose': 'SA-01', 'tongban-case-id': 'JN 1; DROP TABLE' }, 'INPUT_CASE_ID_INVALID'],
    [{ 'tongban-purpose': 'SA-01', 'tongban-case-id': 'x'.repeat(65) }, 'INPUT_CASE_ID_INVALID'],
    [{ 'tongban-purpose': 'SA-01', 'tongban-case-id': 'JN-1', 'tongban-operator': 'a b' }, 'INPUT_OPERATOR_INVALID'],
  ]
  for (const [headers, code] of cases) {
    const res = await verify(body, headers)
    t.equal(res.statusCode, 400, code)
    t.equal(res.json().code, code)
  }
  const ok = await verify(body, context({ 'tongban-operator': 'jn-0042' }))
  t.equal(ok.statusCode, 200)
  t.equal(decodeEvidence(ok.headers['tongban-evidence'] as string).record.operator, 'jn-0042')
})

t.test('the request id is the node\'s own; a well-formed caller value is kept apart, a malformed one dropped', async (t) => {
  const body = { idNumber: p0.idNumber, name: p0.name }
  let res = await verify(body, context({ 'tongban-request-id': 'JN-REQ-000001' }))
  t.match(res.headers['tongban-request-id'], /^[0-9A-Z]{26}$/)
  t.equal(res.headers['tongban-client-request-id'], 'JN-REQ-000001')
  t.equal(decodeEvidence(res.headers['tongban-evidence'] as string).record.clientRequestId, 'JN-REQ-000001')
  res = await verify(body, context({ 'tongban-request-id': 'bad id\u0001' }))
  t.not(res.headers['tongban-request-id'], 'bad id\u0001')
  t.match(res.headers['tongban-request-id'], /^[0-9A-Z]{26}$/)
})

t.test('roles and routes: a provider system may not query; unknown services are 404', async (t) => {
  const providerToken = await h.token('js-public-security')
  let res = await verify({ idNumber: p0.idNumber, name: p0.name }, context(), providerToken)
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'AUTH_ROLE_REQUIRED')
  res = await h.app.inject({ method: 'POST', url: '/v1/verify/horoscope', headers: { authorization: `Bearer ${token}`, ...context() }, payload: {} })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'SERVICE_UNKNOWN')
  res = await verify({ idNumber: p0.idNumber, name: p0.name }, context(), 'not-a-token')
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_TOKEN_INVALID')
})

t.test('generic resource route: same pipeline; not-shared and conditional resources refused', async (t) => {
  const call = (code: string, op: string, payload: object) =>
    h.app.inject({ method: 'POST', url: `/v1/resources/${code}/${op}`, headers: { authorization: `Bearer ${token}`, ...context() }, payload })
  let res = await call(encodeURIComponent('101001/00001'), 'verify', { idNumber: p0.idNumber, name: p0.name })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { match: true })
  res = await call('101001/00001', 'verify', { idNumber: '110105194912310020', name: 'x' })
  t.equal(res.json().code, 'INPUT_INVALID_ID_NUMBER')
  res = await call('999999/99999', 'verify', {})
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'RESOURCE_NOT_FOUND')
  const none = h.app.catalog.list().find((r) => r.sharing.type === 'none')!
  const conditional = h.app.catalog.list().find((r) => r.sharing.type === 'conditional')!
  const opOf = (r: typeof none) => Object.keys(r.service?.operations ?? { query: 1 })[0]
  const subject = { idNumber: p0.idNumber, name: p0.name }
  res = await call(encodeURIComponent(none.code), opOf(none), subject)
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'POLICY_SHARE_NONE')
  res = await call(encodeURIComponent(conditional.code), opOf(conditional), subject)
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'POLICY_NO_GRANT')
})

t.test('every request is audited — allowed, denied, failed — without personal data', async (t) => {
  const rows = await h.query('SELECT decision, reason, subject, record::text AS record FROM audit_records')
  const decisions = new Set(rows.map((r) => r.decision))
  t.ok(decisions.has('allowed'))
  t.ok(decisions.has('denied'))
  t.ok(rows.some((r) => r.reason === 'INPUT_INVALID_ID_NUMBER'))
  t.ok(rows.some((r) => r.reason === 'AUTH_TOKEN_INVALID'))
  t.ok(rows.some((r) => r.reason === 'INPUT_PURPOSE_MISSING'))
  for (const r of rows) {
    t.notMatch(r.record, p0.idNumber)
    t.notMatch(r.record, p0.name)
    t.notMatch(r.record, '110105194912310020')
    t.notMatch(r.record, '张三')
  }
  // The keyed hash finds "who looked up p0?" without storing the number.
  const hits = await h.query('SELECT count(*)::int AS n FROM audit_records WHERE subject = $1', [h.app.hashSubject(p0.idNumber)])
  t.ok(hits[0].n >= 3)
})

t.test('the database refuses to edit or delete audit rows', async (t) => {
  await t.rejects(h.query("UPDATE audit_records SET decision = 'allowed'"), /append-only/)
  await t.rejects(h.query('DELETE FROM audit_checkpoints'), /append-only/)
})
