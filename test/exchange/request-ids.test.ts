// The request id of an audit record is always the node's own ULID: a client that sends a
// Tongban-Request-Id another client also sends (or sent before) cannot make records share
// one id. The client's value is kept in the record as clientRequestId, answered in
// Tongban-Client-Request-Id and searchable by the auditor.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { decodeEvidence, verifyEvidence } from '../../src/evidence/evidence.js'
import { EvidenceVerifier } from '../../packages/client/src/verifier.js'

const h = await startNode({ tag: 'reqids' })
t.teardown(() => h.close())
const [p0] = samplePersons(1)
const tokens = { jn: await h.token('jn-civil-affairs'), nj: await h.token('nj-housing'), auditor: await h.token('js-audit') }

const verify = (token: string, headers: Record<string, string>) =>
  h.app.inject({
    method: 'POST', url: '/v1/verify/identity',
    headers: { authorization: `Bearer ${token}`, ...context(headers) },
    payload: { idNumber: p0.idNumber, name: p0.name },
  })

t.test('two consumers sending the same Tongban-Request-Id get records of their own', async (t) => {
  const same = 'SHARED-REQ-0001'
  const a = await verify(tokens.jn, { 'tongban-request-id': same })
  const b = await verify(tokens.nj, { 'tongban-purpose': 'HS-01', 'tongban-request-id': same })
  t.equal(a.statusCode, 200, a.body)
  t.equal(b.statusCode, 200, b.body)
  const ids = [a, b].map((r) => String(r.headers['tongban-request-id']))
  for (const id of ids) t.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'the node\'s own ULID')
  t.not(ids[0], ids[1], 'two request ids')
  for (const [i, res] of [a, b].entries()) {
    t.equal(res.headers['tongban-client-request-id'], same, 'the client\'s value is echoed apart')
    const ev = decodeEvidence(String(res.headers['tongban-evidence']))
    t.equal(ev.record.requestId, ids[i])
    t.equal(ev.record.clientRequestId, same, 'and kept in the signed record')
    const v = verifyEvidence({ header: String(res.headers['tongban-evidence']), body: res.body, certificates: [h.app.identity.certPem], caCertificate: h.app.identity.caPem })
    t.ok(v.ok, 'the evidence verifies')
    const sdk = new EvidenceVerifier([h.app.identity.caPem])
    sdk.addCertificate(h.app.identity.certPem)
    t.ok(sdk.verify(String(res.headers['tongban-evidence']), res.body).ok, 'the SDK\'s verifier accepts the field')
    const rows = await h.query('SELECT client_request_id FROM audit_records WHERE request_id = $1', [ids[i]])
    t.same(rows, [{ client_request_id: same }], 'exactly one record per request id')
  }
  // GET /v1/audit/records/{id}: each consumer's own record, nothing else at that id.
  for (const [i, dept] of ['11320115MB0000012H', '11320100MB00000342'].entries()) {
    const res = await h.app.inject({ method: 'GET', url: `/v1/audit/records/${ids[i]}`, headers: { authorization: `Bearer ${tokens.auditor}` } })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.json().record.consumer.department, dept)
    t.notOk(res.json().alsoAt, 'no other record shares the id')
  }
  const found = await h.app.inject({ method: 'GET', url: `/v1/audit/records?clientRequestId=${same}`, headers: { authorization: `Bearer ${tokens.auditor}` } })
  t.equal(found.statusCode, 200, found.body)
  t.same(found.json().items.map((x: { record: { requestId: string } }) => x.record.requestId).sort(), [...ids].sort(), 'the auditor finds both by the client\'s value')
})

t.test('a client cannot take over another request\'s id', async (t) => {
  const first = await verify(tokens.jn, {})
  const id = String(first.headers['tongban-request-id'])
  const second = await verify(tokens.nj, { 'tongban-purpose': 'HS-01', 'tongban-request-id': id })
  t.equal(second.statusCode, 200)
  t.not(second.headers['tongban-request-id'], id)
  const rows = await h.query('SELECT count(*)::int AS n FROM audit_records WHERE request_id = $1', [id])
  t.equal(rows[0].n, 1)
})

t.test('a malformed client value is not kept; a missing one leaves no field', async (t) => {
  for (const given of ['short', 'bad id\u0001x', undefined]) {
    const res = await verify(tokens.jn, given === undefined ? {} : { 'tongban-request-id': given })
    t.equal(res.statusCode, 200)
    t.notOk(res.headers['tongban-client-request-id'])
    t.notOk('clientRequestId' in decodeEvidence(String(res.headers['tongban-evidence'])).record)
  }
})

t.test('problem bodies quote the node\'s request id', async (t) => {
  const res = await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { 'tongban-request-id': 'CLIENT-REQ-0042', ...context() }, payload: {} })
  t.equal(res.statusCode, 401)
  t.equal(res.json().requestId, res.headers['tongban-request-id'])
  t.equal(res.headers['tongban-client-request-id'], 'CLIENT-REQ-0042')
})
