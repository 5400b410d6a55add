// The auditor routes as one contract (src/auditor/routes/): role, audit record of the call
// with the auditor's case id, querystring coercion against exact bodies, the raw subject
// kept out of URLs, ordered ranges. The operations are read from /openapi.json, so a route
// added later is held to the same rules (and to an entry in `calls` below).
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'

const h = await startNode({ tag: 'audroutes' })
t.teardown(() => h.close())
const auditor = await h.token('js-audit')
const consumer = await h.token('jn-civil-affairs')
const p0 = person(0)

const verified = await h.app.inject({
  method: 'POST', url: '/v1/verify/identity',
  headers: { authorization: `Bearer ${consumer}`, ...context() },
  payload: { idNumber: p0.idNumber, name: p0.name },
})
if (verified.statusCode !== 200) throw new Error(`verify: ${verified.statusCode} ${verified.body}`)
const recordId = verified.headers['tongban-request-id'] as string

const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json()
type Op = { parameters?: Array<{ in: string; name: string }> }
const operations: Array<{ method: string; path: string; op: Op }> = Object.entries<Record<string, Op>>(doc.paths)
  .filter(([path]) => path.startsWith('/v1/audit/'))
  .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, op })))

interface Call { url: string; payload?: object; headers?: Record<string, string>; operation: string; status: number }
// One answered call per operation, and the audit operation its record must carry.
const calls: Record<string, Call> = {
  'GET /v1/audit/records': { url: '/v1/audit/records?limit=1', operation: 'audit.search', status: 200 },
  'POST /v1/audit/records/search': { url: '/v1/audit/records/search', payload: { subject: p0.idNumber }, operation: 'audit.search', status: 200 },
  'GET /v1/audit/records/{id}': { url: `/v1/audit/records/${recordId}`, operation: 'audit.record', status: 200 },
  'GET /v1/audit/integrity': { url: '/v1/audit/integrity', operation: 'audit.integrity', status: 200 },
  'GET /v1/audit/checkpoints': { url: '/v1/audit/checkpoints', operation: 'audit.checkpoints', status: 200 },
  'GET /v1/audit/heads': { url: '/v1/audit/heads', operation: 'audit.heads', status: 200 },
  'POST /v1/audit/anchors': { url: '/v1/audit/anchors', operation: 'audit.anchor', status: 201 },
  'GET /v1/audit/anchors': { url: '/v1/audit/anchors', operation: 'audit.anchors', status: 200 },
  'GET /v1/audit/subjects/report': { url: '/v1/audit/subjects/report', headers: { 'tongban-subject': p0.idNumber }, operation: 'audit.subject-report', status: 200 },
  'GET /v1/audit/subjects/statement': { url: '/v1/audit/subjects/statement', headers: { 'tongban-subject': p0.idNumber }, operation: 'audit.subject-statement', status: 200 },
  'POST /v1/audit/subjects/report': { url: '/v1/audit/subjects/report', payload: { subject: p0.idNumber }, operation: 'audit.subject-report', status: 200 },
  'GET /v1/audit/stats': { url: '/v1/audit/stats', operation: 'audit.stats', status: 200 },
  'GET /v1/audit/export': { url: `/v1/audit/export?from=${new Date(Date.now() - 3600_000).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}`, operation: 'audit.export', status: 200 },
}

const send = (method: string, url: string, o: { token?: string; payload?: object; headers?: Record<string, string> } = {}) =>
  h.app.inject({
    method: method as 'GET' | 'POST',
    url,
    headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...o.headers },
    ...(o.payload ? { payload: o.payload } : {}),
  })
const get = (url: string, headers: Record<string, string> = {}) => send('GET', url, { token: auditor, headers })
const post = (url: string, payload: object) => send('POST', url, { token: auditor, payload })

t.test('every auditor operation is documented and has a call here', async (t) => {
  t.equal(operations.length, 13)
  t.same(operations.map((o) => `${o.method} ${o.path}`).sort(), Object.keys(calls).sort())
})

t.test('every auditor operation is for auditors only, refused as problem+json', async (t) => {
  for (const { method, path } of operations) {
    const c = calls[`${method} ${path}`]
    const refused = await send(method, c.url, { token: consumer, payload: c.payload, headers: c.headers })
    t.equal(refused.statusCode, 403, `${method} ${path} as a consumer`)
    t.match(refused.headers['content-type'], /^application\/problem\+json/)
    t.equal(refused.json().code, 'AUTH_ROLE_REQUIRED')
    const anonymous = await send(method, c.url, { payload: c.payload, headers: c.headers })
    t.equal(anonymous.statusCode, 401, `${method} ${path} without a token`)
    t.equal(anonymous.json().code, 'AUTH_TOKEN_MISSING')
  }
})

t.test('every auditor call is sealed under its operation, with the auditor\'s case id', async (t) => {
  const sent: Array<{ id: string; key: string; caseId: string }> = []
  let n = 0
  for (const { method, path } of operations) {
    const key = `${method} ${path}`
    const c = calls[key]
    const caseId = `INSP-2026-${String(++n).padStart(3, '0')}`
    const res = await send(method, c.url, { token: auditor, payload: c.payload, headers: { ...c.headers, 'tongban-case-id': caseId } })
    t.equal(res.statusCode, c.status, `${key}: ${res.statusCode === c.status ? '' : res.body.slice(0, 200)}`)
    sent.push({ id: res.headers['tongban-request-id'] as string, key, caseId })
  }
  await h.app.sealer.flush()
  for (const s of sent) {
    const rows = await h.query('SELECT record FROM audit_records WHERE request_id = $1', [s.id])
    t.equal(rows.length, 1, `${s.key}: one record`)
    t.match(rows[0]?.record, { resource: 'audit', operation: calls[s.key].operation, caseId: s.caseId }, s.key)
    t.notMatch(JSON.stringify(rows[0]?.record), p0.idNumber, `${s.key}: no raw subject in the record`)
  }
})

t.test('a malformed case id is refused with its own code on every operation', async (t) => {
  for (const { method, path } of operations) {
    const c = calls[`${method} ${path}`]
    const res = await send(method, c.url, { token: auditor, payload: c.payload, headers: { ...c.headers, 'tongban-case-id': 'not a case id!' } })
    t.equal(res.statusCode, 400, `${method} ${path}`)
    t.equal(res.json().code, 'INPUT_CASE_ID_INVALID', `${method} ${path}`)
  }
})

t.test('query strings are coerced; JSON bodies are taken as they are', async (t) => {
  let res = await get('/v1/audit/records?limit=2&order=asc')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { limit: 2, order: 'asc' })
  res = await get('/v1/audit/records')
  t.match(res.json(), { limit: 50, order: 'desc' }, 'defaults filled in')
  res = await get('/v1/audit/records?limit=abc')
  t.equal(res.statusCode, 400)
  t.match(res.json(), { code: 'INPUT_INVALID', errors: [{ pointer: '/limit' }] })
  res = await get('/v1/audit/records?limit=1&limit=2')
  t.equal(res.json().code, 'INPUT_INVALID', 'a repeated scalar is not taken')
  res = await get('/v1/audit/records?unknown=1')
  t.equal(res.json().code, 'INPUT_INVALID', 'unknown query parameters are refused')

  res = await post('/v1/audit/records/search', { limit: 2, order: 'asc' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { limit: 2, order: 'asc' })
  res = await post('/v1/audit/records/search', { limit: '2' })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { code: 'INPUT_INVALID', errors: [{ pointer: '/limit' }] }, 'a string is not an integer in a body')
  res = await post('/v1/audit/records/search', { unknown: 1 })
  t.equal(res.json().code, 'INPUT_INVALID', 'unknown body properties are refused')
  res = await post('/v1/audit/subjects/report', { subject: p0.idNumber, includeAuditorLookups: 'true' })
  t.equal(res.json().code, 'INPUT_INVALID', 'a string is not a boolean in a body')

  res = await get('/v1/audit/integrity?all=true')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { from: null, to: null })
  res = await get('/v1/audit/integrity?all=yes')
  t.equal(res.json().code, 'INPUT_INVALID')
  const heads = (await get('/v1/audit/heads')).json().heads as Array<{ hash: string }>
  t.ok(heads.length > 0, 'some chain has a head')
  res = await get(`/v1/audit/integrity?head=${heads[0].hash}`)
  t.equal(res.statusCode, 200, 'one head')
  t.equal(res.json().ok, true)
  res = await get(`/v1/audit/integrity?head=${heads[0].hash}&head=${'0'.repeat(64)}`)
  t.equal(res.statusCode, 200, 'two heads')
  t.equal(res.json().ok, false, 'an unknown head is reported')
  res = await get('/v1/audit/integrity?head=xyz')
  t.equal(res.json().code, 'INPUT_INVALID')
  res = await get('/v1/audit/checkpoints?afterSeq=0&limit=1')
  t.equal(res.statusCode, 200)
  t.ok(res.json().items.length <= 1)
  res = await get('/v1/audit/checkpoints?afterSeq=-1')
  t.equal(res.json().code, 'INPUT_INVALID')
})

t.test('a raw subject in a URL is refused wherever the query documents it', async (t) => {
  const withSubject = operations.filter((o) => o.method === 'GET' && o.op.parameters?.some((p) => p.in === 'query' && p.name === 'subject'))
  t.same(withSubject.map((o) => o.path).sort(), ['/v1/audit/records', '/v1/audit/stats', '/v1/audit/subjects/report', '/v1/audit/subjects/statement'])
  for (const { path } of withSubject) {
    const res = await get(`${path}?subject=${p0.idNumber}`)
    t.equal(res.statusCode, 400, path)
    t.equal(res.json().code, 'AUDIT_SUBJECT_IN_URL', path)
    t.notMatch(res.body, p0.idNumber)
  }
})

t.test('`from` must be before `to` on every route with a range', async (t) => {
  const range = 'from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z'
  for (const res of [
    await get(`/v1/audit/integrity?${range}`),
    await get(`/v1/audit/stats?${range}`),
    await get(`/v1/audit/export?${range}`),
    await get(`/v1/audit/subjects/report?${range}`, { 'tongban-subject': p0.idNumber }),
    await post('/v1/audit/subjects/report', { subject: p0.idNumber, from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }),
  ]) {
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'AUDIT_RANGE_INVALID')
  }
  const res = await get('/v1/audit/stats?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z')
  t.equal(res.json().code, 'AUDIT_RANGE_TOO_LARGE')
})
