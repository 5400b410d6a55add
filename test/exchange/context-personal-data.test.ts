// Context headers go into the append-only audit log in clear. A value holding a valid GB
// 11643 id number or GB 32100 credit code — alone, inside a longer value, with a lower-case
// check character — is refused with its own 400 code, and the refusal is audited without it.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { holdsPersonalNumber } from '../../src/gb/personal-number.js'

const h = await startNode({ tag: 'ctxpii' })
t.teardown(() => h.close())
const [p0, p1] = samplePersons(2)
const token = await h.token('jn-civil-affairs')
// Not the caller's own department code, which its records name anyway.
const CREDIT = '11320100MB00000342'
const idX = '11010519491231002X'

const verify = (headers: Record<string, string>) =>
  h.app.inject({
    method: 'POST', url: '/v1/verify/identity',
    headers: { authorization: `Bearer ${token}`, ...context(headers) },
    payload: { idNumber: p0.idNumber, name: p0.name },
  })

t.test('the scan', async (t) => {
  t.ok(holdsPersonalNumber(idX))
  t.ok(holdsPersonalNumber(`CASE-${idX}-2`))
  t.ok(holdsPersonalNumber(idX.toLowerCase()))
  t.ok(holdsPersonalNumber(`x${CREDIT}`))
  t.notOk(holdsPersonalNumber('JN-2026-1000'))
  t.notOk(holdsPersonalNumber('110105194912310020'), 'a wrong check character is no id number')
  t.notOk(holdsPersonalNumber('000000000000000000'))
})

const cases: Array<[string, Record<string, string>, string, string]> = [
  ['case id: an id number', { 'tongban-case-id': p1.idNumber }, 'INPUT_CASE_ID_PERSONAL_DATA', p1.idNumber],
  ['case id: embedded', { 'tongban-case-id': `CASE-${idX}` }, 'INPUT_CASE_ID_PERSONAL_DATA', idX],
  ['case id: lower-case x', { 'tongban-case-id': `JN-${idX.toLowerCase()}` }, 'INPUT_CASE_ID_PERSONAL_DATA', idX.toLowerCase()],
  ['case id: a credit code', { 'tongban-case-id': `JN/${CREDIT}` }, 'INPUT_CASE_ID_PERSONAL_DATA', CREDIT],
  ['operator: an id number', { 'tongban-operator': p1.idNumber }, 'INPUT_OPERATOR_PERSONAL_DATA', p1.idNumber],
  ['operator: embedded', { 'tongban-operator': `op-${p1.idNumber}@jn` }, 'INPUT_OPERATOR_PERSONAL_DATA', p1.idNumber],
  ['purpose description', { 'tongban-purpose': `SA-01;${encodeURIComponent(`低保 ${p1.idNumber}`)}` }, 'INPUT_PURPOSE_PERSONAL_DATA', p1.idNumber],
  ['request id', { 'tongban-request-id': `REQ-${p1.idNumber}` }, 'INPUT_REQUEST_ID_PERSONAL_DATA', p1.idNumber],
  ['request id: a credit code', { 'tongban-request-id': CREDIT }, 'INPUT_REQUEST_ID_PERSONAL_DATA', CREDIT],
]

for (const [label, headers, code, secret] of cases) {
  t.test(`${label}: 400 ${code}, audited without the value`, async (t) => {
    const res = await verify(headers)
    t.equal(res.statusCode, 400, res.body)
    t.equal(res.json().code, code)
    t.notMatch(res.body, secret, 'the answer does not quote it')
    const id = String(res.headers['tongban-request-id'])
    const rows = await h.query('SELECT decision, reason, record::text AS text FROM audit_records WHERE request_id = $1', [id])
    t.equal(rows.length, 1, 'the refusal is audited')
    t.match(rows[0], { decision: 'denied', reason: code })
    t.notOk(rows[0].text.toUpperCase().includes(secret.toUpperCase()), 'the record does not hold the value')
  })
}

t.test('the auditor\'s own case id is checked too', async (t) => {
  const auditor = await h.token('js-audit')
  const res = await h.app.inject({ method: 'GET', url: '/v1/audit/records?limit=1', headers: { authorization: `Bearer ${auditor}`, 'tongban-case-id': `AUD-${p1.idNumber}` } })
  t.equal(res.statusCode, 400, res.body)
  t.equal(res.json().code, 'INPUT_CASE_ID_PERSONAL_DATA')
})

t.test('ordinary values pass', async (t) => {
  const res = await verify({ 'tongban-case-id': 'JN-2026-110105', 'tongban-operator': 'jn-0042', 'tongban-request-id': 'JN-REQ-20261201-0001' })
  t.equal(res.statusCode, 200, res.body)
  const none = await h.query('SELECT count(*)::int AS n FROM audit_records WHERE record::text LIKE $1', [`%${p1.idNumber}%`])
  t.equal(none[0].n, 0, 'no refused value anywhere in the log')
})
