// Auditor search, record + evidence, subject access report and the admin-action log, on
// real traffic through the gateway plus sealed synthetic history with known values.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { createSigner } from '../../src/pki/suites.js'
import { sealSynthetic, syntheticRecord } from '../../dev/synthetic-audit.js'
import { verifyEvidence, decodeEvidence } from '../../src/evidence/evidence.js'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'

const h = await startNode({ tag: 'audsearch' })
t.teardown(() => h.close())
const node = h.config.node.id
const { identity } = h.app
const signer = { ...createSigner('RS256', identity.keyPem), kid: identity.kid }
const tokens = {
  auditor: await h.token('js-audit'),
  jn: await h.token('jn-civil-affairs'),
  nj: await h.token('nj-housing'),
  admin: await h.token('js-catalog-admin'),
}
const [p0, p1, p2] = [person(0), person(1), person(2)]

const verify = (token: string, p: { idNumber: string; name: string }, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context(headers) }, payload: { idNumber: p.idNumber, name: p.name } })
const get = (url: string, token = tokens.auditor, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}`, ...headers } })
const post = (url: string, payload: object, token = tokens.auditor) =>
  h.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload })

// ---- traffic -----------------------------------------------------------------------
const seen: Record<string, string> = {}
for (const [name, res] of [
  ['jn-p0', await verify(tokens.jn, p0, { 'tongban-case-id': 'JN-2026-0001', 'tongban-operator': 'jn-0042' })],
  ['jn-p1', await verify(tokens.jn, p1, { 'tongban-case-id': 'JN-2026-0002' })],
  ['nj-p0', await verify(tokens.nj, p0, { 'tongban-purpose': 'HS-01', 'tongban-case-id': 'NJ-2026-0001' })],
] as const) {
  if (res.statusCode !== 200) throw new Error(`${name}: ${res.statusCode} ${res.body}`)
  seen[name] = res.headers['tongban-request-id'] as string
}
// Refused: a conditional resource without a grant (the subject is still recorded).
const conditional = h.app.catalog.list().find((r) => r.sharing.type === 'conditional' && r.service?.operations)!
const denied = await h.app.inject({
  method: 'POST', url: `/v1/resources/${encodeURIComponent(conditional.code)}/${Object.keys(conditional.service!.operations)[0]}`,
  headers: { authorization: `Bearer ${tokens.nj}`, ...context({ 'tongban-purpose': 'HS-01', 'tongban-case-id': 'NJ-2026-0002' }) },
  payload: { idNumber: p0.idNumber, name: p0.name },
})
if (denied.statusCode !== 403) throw new Error(`denied: ${denied.statusCode} ${denied.body}`)
// A failed login (an assertion signed with another system's key).
await h.app.inject({
  method: 'POST', url: '/v1/oauth/token',
  payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: h.assertion('nj-housing', { keyPem: (await import('../helpers/harness.js')).clientKey('jn-civil-affairs') }) },
})
// An admin action: retiring a resource that does not exist is refused, and audited.
await h.app.inject({ method: 'DELETE', url: `/v1/catalog/resources/${encodeURIComponent('999999/99999')}`, headers: { authorization: `Bearer ${tokens.admin}`, 'if-match': '*' } })

// Synthetic history with known values (yesterday), 12 records on 3 batches.
const day = new Date(Date.now() - 86400_000)
day.setUTCHours(2, 0, 0, 0)
const depts = [
  { department: '11320115MB0000012H', system: 'jn-civil-affairs', region: '320115' },
  { department: '11320100MB00000342', system: 'nj-housing', region: '320100' },
]
for (let b = 0; b < 3; b++) {
  await sealSynthetic(h.app.db, {
    chain: 'history', node, signer,
    records: Array.from({ length: 4 }, (_, i) => {
      const n = b * 4 + i
      return syntheticRecord(node, {
        time: new Date(day.getTime() + n * 60_000),
        consumer: depts[n % 2],
        resource: n % 3 === 0 ? '103002/00002' : '101001/00001',
        operation: n % 3 === 0 ? 'query' : 'verify',
        purpose: n % 2 ? 'HS-01' : 'SA-01',
        caseId: `HIST-${n}`,
        subject: h.app.hashSubject(person(10 + (n % 4)).idNumber),
        ...(n % 4 === 3 ? { decision: 'denied' as const, reason: 'QUOTA_EXCEEDED' } : {}),
        ...(n === 5 ? { operator: 'nj-0007' } : {}),
      })
    }),
  })
}

const search = async (filters: Record<string, unknown>) => {
  const res = await post('/v1/audit/records/search', filters)
  if (res.statusCode !== 200) throw new Error(`search ${JSON.stringify(filters)}: ${res.statusCode} ${res.body}`)
  return res.json() as { items: Array<{ record: any; chain: string; seq: number; idx: number }>; nextCursor: string | null }
}
const ids = (r: { items: Array<{ record: any }> }) => r.items.map((i) => i.record.requestId)

t.test('search by every filter', async (t) => {
  const from = day.toISOString()
  const to = new Date(day.getTime() + 86400_000 / 2).toISOString()
  const hist = { from, to }
  t.equal((await search(hist)).items.length, 12, 'time range')
  t.equal((await search({ ...hist, department: '11320100MB00000342' })).items.length, 6, 'department')
  t.equal((await search({ ...hist, system: 'jn-civil-affairs' })).items.length, 6, 'system')
  t.equal((await search({ ...hist, region: '320100' })).items.length, 6, 'region')
  t.equal((await search({ ...hist, resource: '103002/00002' })).items.length, 4, 'resource')
  t.equal((await search({ ...hist, operation: 'query' })).items.length, 4, 'operation')
  t.equal((await search({ ...hist, service: 'identity' })).items.length, 8, 'service (identity → 101001/00001)')
  const provider = h.app.catalog.get('101001/00001')!.provider.code
  t.equal((await search({ ...hist, provider })).items.length, 8, 'provider department → its resources')
  t.equal((await search({ ...hist, decision: 'denied' })).items.length, 3, 'decision')
  t.equal((await search({ ...hist, reason: 'QUOTA_EXCEEDED' })).items.length, 3, 'reason')
  t.equal((await search({ ...hist, purpose: 'HS-01' })).items.length, 6, 'purpose')
  t.same(ids(await search({ caseId: 'HIST-7' })).length, 1, 'case id')
  t.equal((await search({ operator: 'nj-0007' })).items[0].record.caseId, 'HIST-5', 'operator')
  t.equal((await search({ operator: 'jn-0042' })).items[0].record.requestId, seen['jn-p0'], 'operator (real traffic)')
  t.equal((await search({ ...hist, node })).items.length, 12, 'node')
  t.equal((await search({ chain: 'history' })).items.length, 12, 'chain')
  t.same(ids(await search({ requestId: seen['nj-p0'] })), [seen['nj-p0']], 'request id')
  t.equal((await search({ ...hist, subject: person(11).idNumber })).items.length, 3, 'raw subject (hashed by the gateway)')
  t.equal((await search({ ...hist, subjectHash: h.app.hashSubject(person(11).idNumber) })).items.length, 3, 'subject hash')
  t.equal((await search({ ...hist, department: '11320100MB00000342', decision: 'denied' })).items.length, 3, 'filters combine (AND)')

  // Real traffic: p0 was looked up by two departments, and refused once.
  const p0hits = await search({ subject: p0.idNumber, kind: 'query' })
  t.same(new Set(p0hits.items.map((i) => i.record.consumer.system)), new Set(['jn-civil-affairs', 'nj-housing']))
  t.equal(p0hits.items.filter((i) => i.record.decision === 'denied').length, 1)
  t.equal((await search({ subject: ` ${p0.idNumber.toLowerCase()} `, kind: 'query' })).items.length, p0hits.items.length, 'the subject is normalised like the gateway does')

  // Kinds: admin actions, logins, auditors' own calls.
  const admin = await search({ kind: 'admin' })
  t.ok(admin.items.some((i) => i.record.operation === 'catalog.retire' && i.record.consumer.system === 'js-catalog-admin' && i.record.decision === 'denied'), 'catalogue change (refused) in the admin log')
  t.ok(admin.items.some((i) => i.record.operation === 'node.certificate'), 'key/certificate event in the admin log')
  const logins = await search({ kind: 'login', decision: 'denied' })
  t.ok(logins.items.length >= 1, 'failed login')
  t.ok((await search({ kind: 'audit', includeOwn: true })).items.length > 0, 'auditor calls (its own: includeOwn)')
  t.notOk((await search({ ...hist, kind: 'admin' })).items.length)

  // GET with filters (not the raw subject).
  const res = await get(`/v1/audit/records?department=11320115MB0000012H&from=${from}&to=${to}&limit=3`)
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().items.length, 3)
  t.ok(res.json().nextCursor)
})

t.test('cursor pagination: stable order, no duplicates, hard cap', async (t) => {
  const all = await search({ chain: 'history', limit: 500 })
  const seenIds: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page = await search({ chain: 'history', limit: 5, ...(cursor ? { cursor } : {}) })
    seenIds.push(...ids(page))
    cursor = page.nextCursor ?? undefined
    pages++
  } while (cursor && pages < 10)
  t.equal(pages, 3)
  t.same(seenIds, ids(all), 'pages concatenate to the full, ordered result')
  const times = all.items.map((i) => Date.parse(i.record.time))
  t.same(times, [...times].sort((a, b) => b - a), 'newest first')
  const asc = await search({ chain: 'history', order: 'asc', limit: 500 })
  t.same(ids(asc), ids(all).reverse())

  let res = await post('/v1/audit/records/search', { chain: 'history', limit: 501 })
  t.equal(res.statusCode, 400, 'page size above the cap is refused')
  t.equal(res.json().code, 'INPUT_INVALID')
  res = await get('/v1/audit/records?limit=1000')
  t.equal(res.statusCode, 400)
  const first = await search({ chain: 'history', limit: 2 })
  res = await post('/v1/audit/records/search', { chain: 'other', cursor: first.nextCursor })
  t.equal(res.json().code, 'AUDIT_CURSOR_INVALID', 'a cursor continues only its own search')
  res = await post('/v1/audit/records/search', { cursor: 'garbage' })
  t.equal(res.json().code, 'AUDIT_CURSOR_INVALID')
})

t.test('the raw subject never goes in a URL, is validated, and never lands in the log', async (t) => {
  let res = await get(`/v1/audit/records?subject=${p0.idNumber}`)
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'AUDIT_SUBJECT_IN_URL')
  t.notMatch(res.body, p0.idNumber)
  res = await get(`/v1/audit/subjects/report?subject=${p0.idNumber}`)
  t.equal(res.json().code, 'AUDIT_SUBJECT_IN_URL')
  res = await post('/v1/audit/records/search', { subject: '320115199003070129' })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'AUDIT_SUBJECT_INVALID', 'a typo is refused, not answered with "nobody looked"')
  t.notMatch(res.body, '320115199003070129')

  await h.app.sealer.flush()
  const rows = await h.query("SELECT record::text AS record, subject FROM audit_records WHERE operation LIKE 'audit.%'")
  t.ok(rows.length > 5, 'every auditor call is audited')
  for (const r of rows) {
    t.notMatch(r.record, p0.idNumber)
    t.notMatch(r.record, person(11).idNumber)
  }
  t.ok(rows.some((r) => r.subject === h.app.hashSubject(p0.idNumber)), 'an auditor\'s lookup of p0 is itself findable by p0\'s keyed hash')
})

t.test('non-auditors are refused', async (t) => {
  for (const token of [tokens.jn, tokens.admin]) {
    let res = await post('/v1/audit/records/search', { subject: p0.idNumber }, token)
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'AUTH_ROLE_REQUIRED')
    res = await get('/v1/audit/records', token)
    t.equal(res.statusCode, 403)
    res = await get(`/v1/audit/records/${seen['jn-p0']}`, token)
    t.equal(res.statusCode, 403)
    res = await get('/v1/audit/stats', token)
    t.equal(res.statusCode, 403)
    res = await post('/v1/audit/subjects/report', { subject: p0.idNumber }, token)
    t.equal(res.statusCode, 403)
  }
  const res = await get('/v1/audit/records', 'not-a-token')
  t.equal(res.statusCode, 401)
})

t.test('one record with its evidence: the consumer\'s evidence and the auditor\'s are the same', async (t) => {
  const res = await get(`/v1/audit/records/${seen['jn-p0']}`)
  t.equal(res.statusCode, 200, res.body)
  const r = res.json()
  t.same(r.verified, { leaf: true, root: true, checkpoint: true })
  t.equal(r.record.operator, 'jn-0042')
  const ev = decodeEvidence(r.evidenceHeader)
  t.equal(ev.record.requestId, seen['jn-p0'])
  // The evidence verifies against the response body the consumer got ({"match":true}).
  const v = verifyEvidence({ header: r.evidenceHeader, body: '{"match":true}', certificates: [identity.certPem], caCertificate: identity.caPem })
  t.ok(v.ok, JSON.stringify(v))
  const missing = await get('/v1/audit/records/NOPE-000000000')
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'AUDIT_RECORD_NOT_FOUND')
})

t.test('subject access report: which departments, when, for what purpose', async (t) => {
  const res = await h.app.inject({ method: 'POST', url: '/v1/audit/subjects/report', headers: { authorization: `Bearer ${tokens.auditor}` }, payload: { subject: p0.idNumber } })
  t.equal(res.statusCode, 200, res.body)
  const rep = res.json()
  t.notMatch(res.body, p0.idNumber, 'the raw id is not echoed')
  t.equal(rep.subject.masked, p0.idNumber.slice(0, 4) + '*'.repeat(10) + p0.idNumber.slice(-4))
  t.equal(rep.total, 3, 'two lookups and one refused request; the auditors\' own lookups are not accesses')
  const byDept = Object.fromEntries(rep.departments.map((d: any) => [d.department, d]))
  t.equal(byDept['11320115MB0000012H'].accesses, 1)
  t.equal(byDept['11320115MB0000012H'].name, '南京市江宁区民政局')
  t.same(byDept['11320115MB0000012H'].purposes.map((p: any) => p.code), ['SA-01'])
  t.ok(byDept['11320115MB0000012H'].purposes[0].name, 'purpose names for a citizen to read')
  t.equal(byDept['11320100MB00000342'].accesses, 2)
  t.equal(byDept['11320100MB00000342'].refused, 1)
  t.same(new Set(rep.accesses.map((a: any) => a.requestId)).has(seen['nj-p0']), true)
  t.notOk(rep.accesses.some((a: any) => a.requestId === seen['jn-p1']), 'p1\'s lookup is not in p0\'s report')
  t.ok(res.headers['tongban-evidence'], 'the report is signed (sealed like every audited answer)')
  const v = verifyEvidence({ header: res.headers['tongban-evidence'] as string, body: res.body, certificates: [identity.certPem], caCertificate: identity.caPem })
  t.ok(v.ok, 'and its evidence verifies against the exact report body')

  // The same by header (GET), and by hash.
  const byHeader = await get('/v1/audit/subjects/report', tokens.auditor, { 'tongban-subject': p0.idNumber })
  t.equal(byHeader.statusCode, 200, byHeader.body)
  t.equal(byHeader.json().total, 3)
  const byHash = await get(`/v1/audit/subjects/report?subjectHash=${h.app.hashSubject(p0.idNumber)}&includeAuditorLookups=true`)
  t.ok(byHash.json().total > 3, 'auditor lookups are included on request')
  const none = await post('/v1/audit/subjects/report', { subject: p2.idNumber })
  t.equal(none.json().total, 0)
  t.same(none.json().departments, [])
  const missing = await get('/v1/audit/subjects/report')
  t.equal(missing.json().code, 'AUDIT_SUBJECT_MISSING')
})
