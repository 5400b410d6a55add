// The query engine called as a caller other than an HTTP route would (a bulk item, a relayed
// query at its owner): one Query in, the pipeline top to bottom, a sealed answer out —
// releases and refusals alike, each with evidence over the exact bytes answered.
import t from 'tap'
import { startNode } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { encodeEvidence, verifyEvidence } from '../../src/evidence/evidence.js'
import type { Query } from '../../src/exchange/query.js'

const h = await startNode({ tag: 'engine' })
t.teardown(() => h.close())
const p = person(3)
const query = (over: Partial<Query> = {}): Query => ({
  requestId: `engine-${Math.random().toString(36).slice(2, 12)}`,
  principal: { system: 'jn-civil-affairs', department: '11320115MB0000012H', region: '320115', tier: 'county', roles: ['consumer'] },
  target: { kind: 'verify', service: 'identity' },
  context: { purpose: 'SA-01', caseId: 'JN-ENGINE-1' },
  body: { idNumber: p.idNumber, name: p.name },
  state: {},
  ...over,
})
const check = (a: { body: string; evidence: Parameters<typeof encodeEvidence>[0] }) =>
  verifyEvidence({ header: encodeEvidence(a.evidence), body: a.body, certificates: [h.app.identity.certPem], caCertificate: h.app.identity.caPem })
const recordOf = async (requestId: string) => (await h.query('SELECT decision, reason, record FROM audit_records WHERE request_id = $1', [requestId]))[0]

t.test('a release: every step ran, the answer is sealed with its evidence', async (t) => {
  const q = query()
  const a = await h.app.exchange.run(q)
  t.equal(a.status, 200)
  t.same(JSON.parse(a.body), { match: true })
  t.ok(check(a).ok, 'the evidence covers the bytes answered')
  t.match(q.state, { purpose: 'SA-01', caseId: 'JN-ENGINE-1', resource: '101001/00001', operation: 'verify' }, 'the steps wrote the request state')
  t.match(q.state.subject, /^hmac-sha256:/, 'the subject as its keyed hash')
  t.match(await recordOf(q.requestId), { decision: 'allowed' })
})

t.test('a refusal is an answer, sealed like a release', async (t) => {
  const q = query({ body: { idNumber: `${p.idNumber.slice(0, 17)}${p.idNumber[17] === '0' ? '1' : '0'}`, name: p.name } })
  const a = await h.app.exchange.run(q)
  t.equal(a.status, 400)
  t.equal(a.code, 'INPUT_INVALID_ID_NUMBER')
  t.ok(check(a).ok, 'the refusal has its evidence too')
  t.match(await recordOf(q.requestId), { decision: 'denied', reason: 'INPUT_INVALID_ID_NUMBER' })
})

t.test('the context is checked first: a missing purpose is refused before anything else', async (t) => {
  const q = query({ context: { caseId: 'JN-ENGINE-2' }, target: { kind: 'resources', code: '999999/99999', operation: 'query' } })
  const a = await h.app.exchange.run(q)
  t.equal(a.code, 'INPUT_PURPOSE_MISSING')
  t.match(await recordOf(q.requestId), { decision: 'denied', reason: 'INPUT_PURPOSE_MISSING' })
})

t.test('a value the log cannot hold exactly is never released under an escaped record', async (t) => {
  // No step lets one through today; the engine holds the line should one ever do.
  const q = query({ state: { grant: 'g\u0000\ud800' } })
  const a = await h.app.exchange.run(q)
  t.equal(a.status, 400)
  t.equal(a.code, 'INPUT_UNREPRESENTABLE')
  t.notMatch(a.body, /match/, 'nothing of the answer')
  const row = await recordOf(q.requestId)
  t.match(row, { decision: 'denied', reason: 'INPUT_UNREPRESENTABLE' })
  t.same((typeof row.record === 'string' ? JSON.parse(row.record) : row.record).escaped, ['grant'], 'the record says which field it escaped')
})
