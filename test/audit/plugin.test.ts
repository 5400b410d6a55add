// The seal step on a real node: hostile strings (NUL, control characters, lone surrogates)
// in path segments, headers and body fields, sent among many legitimate queries, never cost
// another client its answer; each hostile request gets its 4xx and is itself audited; every
// record read back hashes to its leaf. And a streamed answer (bulk results) is audited over
// the bytes actually sent.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { buildApp } from '../../src/app.js'
import { samplePersons } from '../../dev/providers/population.js'
import { digest, verifyEvidence } from '../../src/evidence/evidence.js'
import { leafHash } from '../../src/evidence/merkle.js'
import { jcs } from '../../src/evidence/jcs.js'

t.setTimeout(300_000)

const h = await startNode({ tag: 'auditplug' })
t.teardown(() => h.close())
const token = await h.token('jn-civil-affairs')
const auditor = await h.token('js-audit')
const people = samplePersons(150)
const certificates = [h.app.identity.certPem]
const caCertificate = h.app.identity.caPem

type Req = { method: 'GET' | 'POST'; url: string; headers?: Record<string, string>; payload?: object; auth?: string }
const send = (r: Req) => h.app.inject({
  method: r.method,
  url: r.url,
  headers: { authorization: `Bearer ${r.auth ?? token}`, ...context(), ...r.headers },
  ...(r.payload ? { payload: r.payload } : {}),
})

async function storedLeafVerifies(requestId: string): Promise<{ ok: boolean; record?: any }> {
  const rows = await h.query('SELECT leaf, record FROM audit_records WHERE request_id = $1', [requestId])
  if (rows.length !== 1) return { ok: false }
  return { ok: rows[0].leaf === leafHash(jcs(rows[0].record)).toString('hex'), record: rows[0].record }
}

t.test('hostile strings among 150 legitimate queries: all legitimate answered with evidence, every request audited', async (t) => {
  const p = people[0]
  const verify = { method: 'POST', url: '/v1/verify/identity' } as const
  // [request, expected status, expected code]; null: whatever 4xx the route gives.
  const hostile: Array<[Req, number | null, string | null]> = [
    [{ method: 'POST', url: '/v1/resources/101001%2F00001/ver%00ify', payload: { idNumber: p.idNumber, name: p.name } }, 400, 'INPUT_UNREPRESENTABLE'],
    [{ method: 'POST', url: '/v1/resources/101001/00001/%00', payload: {} }, 400, 'INPUT_UNREPRESENTABLE'],
    [{ method: 'POST', url: '/v1/resources/101001/00001/verify%01%1f%7f', payload: {} }, 404, 'RESOURCE_OPERATION_UNKNOWN'],
    [{ method: 'POST', url: '/v1/verify/%00identity', payload: {} }, 400, 'INPUT_UNREPRESENTABLE'],
    [{ ...verify, headers: { 'tongban-case-id': 'JN-\u0000' }, payload: { idNumber: p.idNumber, name: p.name } }, 400, 'INPUT_CASE_ID_INVALID'],
    [{ ...verify, headers: { 'tongban-case-id': 'JN-\ud800' }, payload: { idNumber: p.idNumber, name: p.name } }, 400, 'INPUT_CASE_ID_INVALID'],
    [{ ...verify, headers: { 'tongban-operator': 'op\u0000' }, payload: { idNumber: p.idNumber, name: p.name } }, 400, 'INPUT_OPERATOR_INVALID'],
    [{ ...verify, headers: { 'tongban-operator': 'op\udfff' }, payload: { idNumber: p.idNumber, name: p.name } }, 400, 'INPUT_OPERATOR_INVALID'],
    [{ ...verify, headers: { 'tongban-purpose': 'SA-01;%00%ED%A0%80\u0000' }, payload: { idNumber: p.idNumber, name: p.name } }, null, null],
    [{ ...verify, headers: { 'tongban-purpose': '\u0000SA-01' }, payload: { idNumber: p.idNumber, name: p.name } }, 400, 'INPUT_PURPOSE_INVALID'],
    [{ ...verify, payload: { idNumber: '\u0000', name: p.name } }, 400, null],
    [{ ...verify, payload: { idNumber: p.idNumber, name: 'A\u0000\ud800B' } }, null, null],
    [{ method: 'POST', url: '/v1/batches', payload: { service: '\u0000\ud800', items: [{}] } }, 400, 'INPUT_UNREPRESENTABLE'],
    [{ method: 'POST', url: '/v1/batches', payload: { resource: '101001/0000\u0000', operation: 'verify', items: [{}] } }, 400, 'INPUT_UNREPRESENTABLE'],
    [{ method: 'GET', url: '/v1/audit/records?limit=1', auth: auditor, headers: { 'tongban-case-id': 'AUD-\u0000' } }, 400, 'INPUT_CASE_ID_INVALID'],
    [{ method: 'GET', url: '/v1/audit/records?limit=1', auth: auditor, headers: { 'tongban-case-id': 'AUD-\ud800\u0001' } }, 400, 'INPUT_CASE_ID_INVALID'],
  ]
  const legit: Req[] = people.map((q, i) => ({ ...verify, headers: (i % 3 === 0 ? { 'tongban-request-id': 'x\u0000y' } : {}) as Record<string, string>, payload: { idNumber: q.idNumber, name: q.name } }))
  // Interleaved, all at once: the hostile ones land in the same group-commit batches.
  const all: Array<{ req: Req; hostile?: [number | null, string | null] }> = legit.map((req) => ({ req }))
  hostile.forEach(([req, status, code], k) => all.splice(3 + k * 9, 0, { req, hostile: [status, code] }))
  // 25 in flight: enough to share every batch, few enough for the provider's 3 s budget on
  // a busy machine.
  const answers: Awaited<ReturnType<typeof send>>[] = []
  let next = 0
  await Promise.all(Array.from({ length: 25 }, async () => {
    while (next < all.length) {
      const k = next++
      answers[k] = await send(all[k].req)
    }
  }))

  let legitOk = 0
  for (let i = 0; i < all.length; i++) {
    const { req, hostile: expect } = all[i]
    const res = answers[i]
    const what = `${req.url} ${JSON.stringify(req.headers ?? {})} ${JSON.stringify(req.payload ?? {})}`
    const rid = res.headers['tongban-request-id'] as string
    if (!expect) {
      if (res.statusCode !== 200) {
        t.fail(`legitimate query ${i} got ${res.statusCode} ${res.body}`)
        continue
      }
      const v = verifyEvidence({ header: res.headers['tongban-evidence'] as string, body: res.body, certificates, caCertificate })
      if (v.ok) legitOk++
      else t.fail(`evidence of ${i} does not verify: ${JSON.stringify(v)}`)
    } else {
      const [status, code] = expect
      if (status === null) t.ok(res.statusCode < 500, `${what}: ${res.statusCode}`)
      else t.equal(res.statusCode, status, `${what}: ${res.body}`)
      if (code) t.equal(res.json().code, code, what)
      t.match(res.headers['content-type'], res.statusCode >= 400 ? /^application\/problem\+json/ : /json/)
    }
    const stored = await storedLeafVerifies(rid)
    if (!stored.ok) t.fail(`request ${i} (${what}) has no durable audit record whose leaf verifies`)
    else if (expect) t.equal(stored.record.reason, res.json().code ?? undefined, `${what}: the record's reason`)
  }
  t.equal(legitOk, legit.length, 'every legitimate query: 200 with evidence that verifies')
  const [row] = await h.query("SELECT record FROM audit_records WHERE operation = $1", ['verify\u0001\u001f\u007f'])
  t.ok(row, 'control characters are stored as they are')
  t.notOk(row && 'escaped' in row.record)
})

t.test('a value that reaches the record unrepresentable: 400 INPUT_UNREPRESENTABLE, audited with the escaped form', async (t) => {
  // A second app on the node's schema, with a route that puts request data into the record
  // unchecked (what a future route might do).
  const app = await buildApp({ ...h.config, replicaId: `${h.config.replicaId}-u` }, { logger: false })
  // Bodies holding such strings are refused at the door; this route decodes its own escape
  // (JSON \u escapes in the text), as a future route might, so the value gets past the door.
  app.post<{ Body: { caseId: string } }>('/test/unchecked', { config: { audit: { operation: 'test.unchecked' } } }, async (request) => {
    request.audit.caseId = JSON.parse(`"${request.body.caseId}"`)
    return { released: 'data' }
  })
  await app.ready()
  t.teardown(() => app.close())
  const cases = ['C-\\u0000', 'C-\\ud800', 'C-\\udfff\\\\u0000']
  const answers = await Promise.all([
    ...cases.map((caseId) => app.inject({ method: 'POST', url: '/test/unchecked', payload: { caseId } })),
    ...cases.map(() => app.inject({ method: 'POST', url: '/test/unchecked', payload: { caseId: 'C-fine' } })),
  ])
  for (const [k, res] of answers.entries()) {
    const stored = await storedLeafVerifies(res.headers['tongban-request-id'] as string)
    t.ok(stored.ok, 'audited; the leaf verifies')
    const v = verifyEvidence({ header: res.headers['tongban-evidence'] as string, body: res.body, certificates, caCertificate })
    t.ok(v.ok, 'evidence over the refusal verifies')
    if (k >= cases.length) {
      t.equal(res.statusCode, 200)
      continue
    }
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'INPUT_UNREPRESENTABLE')
    t.notMatch(res.body, /released/, 'nothing of the answer is released')
    t.equal(stored.record.reason, 'INPUT_UNREPRESENTABLE')
    t.same(stored.record.escaped, ['caseId'])
    t.equal(stored.record.responseDigest, digest(res.body))
  }
  const [row] = await h.query('SELECT record FROM audit_records WHERE case_id = $1', ['C-\\u0000'])
  t.ok(row, 'the escaped case id is searchable as its escaped text')
})

t.test('the bulk results download: its record commits to the exact bytes sent', async (t) => {
  const items = people.slice(0, 12).map((p) => ({ idNumber: p.idNumber, name: p.name }))
  const sub = await send({ method: 'POST', url: '/v1/batches', payload: { service: 'identity', items } })
  t.equal(sub.statusCode, 202, sub.body)
  const id = sub.json().id
  const end = Date.now() + 120_000
  while ((await send({ method: 'GET', url: `/v1/batches/${id}` })).json().status !== 'completed') {
    if (Date.now() > end) throw new Error('batch did not complete')
    await new Promise((r) => setTimeout(r, 100))
  }
  for (const url of [`/v1/batches/${id}/results`, `/v1/batches/${id}/results?from=5`]) {
    const res = await send({ method: 'GET', url })
    t.equal(res.statusCode, 200)
    t.ok(res.rawPayload.length > 0)
    const stored = await storedLeafVerifies(res.headers['tongban-request-id'] as string)
    t.ok(stored.ok, 'the download is audited')
    t.equal(stored.record.operation, 'batch.results')
    t.equal(stored.record.responseDigest, digest(res.rawPayload), 'responseDigest = SHA-256 of the downloaded bytes')
    t.not(stored.record.responseDigest, digest(''))
  }
})
