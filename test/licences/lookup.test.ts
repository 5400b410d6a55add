// POST /v1/licences/lookup: a holder's licences from the library under the sharing rules of
// its catalogue entry (有条件共享: purpose, case and an approved grant), end to end; what it
// answers verifies with POST /v1/licences/verify.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { sampleHolders } from '../../dev/providers/licences/library.js'
import { decodeEvidence, verifyEvidence } from '../../src/evidence/evidence.js'

const h = await startNode({ tag: 'licence_lookup' })
t.teardown(() => h.close())
const tokens = {
  jn: await h.token('jn-civil-affairs'),
  nj: await h.token('nj-housing'),
  library: await h.token('js-licence-library'),
}
const p0 = person(0)
const { enterprise } = sampleHolders()

const lookup = (payload: unknown, headers: Record<string, string> = context(), bearer = tokens.jn) =>
  h.app.inject({ method: 'POST', url: '/v1/licences/lookup', headers: { authorization: `Bearer ${bearer}`, ...headers }, payload: payload as object })
const api = (token: string, url: string, payload: object) =>
  h.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload })

t.test('refused without purpose, case or grant', async (t) => {
  const noPurpose = await lookup({ holderId: p0.idNumber }, { 'tongban-case-id': 'JN-2026-1000' })
  t.equal(noPurpose.statusCode, 400)
  t.equal(noPurpose.json().code, 'INPUT_PURPOSE_MISSING')
  const noCase = await lookup({ holderId: p0.idNumber }, { 'tongban-purpose': 'SA-01' })
  t.equal(noCase.statusCode, 400)
  t.equal(noCase.json().code, 'INPUT_CASE_ID_MISSING')
  const noGrant = await lookup({ holderId: p0.idNumber })
  t.equal(noGrant.statusCode, 403)
  t.equal(noGrant.json().code, 'POLICY_NO_GRANT')
  const ev = decodeEvidence(noGrant.headers['tongban-evidence'] as string)
  t.equal(ev.record.decision, 'denied')
  t.equal(ev.record.resource, '110001/00002')
  t.equal(ev.record.reason, 'POLICY_NO_GRANT')
  t.match(ev.record.subject, /^hmac-sha256:/, 'whose licences were asked for, as a keyed hash')
  const bad = await lookup({ holderId: p0.idNumber.slice(0, 17) + (p0.idNumber.endsWith('1') ? '2' : '1') })
  t.equal(bad.json().code, 'INPUT_INVALID_ID_NUMBER')
  const badCode = await lookup({ holderId: enterprise.creditCode.slice(0, 17) + (enterprise.creditCode.endsWith('1') ? '2' : '1') })
  t.equal(badCode.json().code, 'INPUT_INVALID_CREDIT_CODE')
  const extra = await lookup({ holderId: p0.idNumber, everything: true })
  t.equal(extra.json().code, 'INPUT_INVALID')
})

t.test('under a grant: the holder\'s licences, each of which verifies', async (t) => {
  const applied = await api(tokens.jn, '/v1/applications', {
    resource: '110001/00002', items: ['licences'], purposes: ['SA-01'], basis: '《江苏省政务服务管理办法》：一网通办事项经申请人同意调取电子证照，免交纸质材料',
    validTo: new Date(Date.now() + 30 * 86400_000).toISOString(), dailyQuota: 100,
  })
  t.equal(applied.statusCode, 201, applied.body)
  const decided = await api(tokens.library, `/v1/applications/${applied.json().id}/decision`, { decision: 'approve', reason: '符合条件' })
  t.equal(decided.statusCode, 200, decided.body)

  const res = await lookup({ holderId: p0.idNumber })
  t.equal(res.statusCode, 200, res.body)
  t.ok(verifyEvidence({ header: res.headers['tongban-evidence'] as string, body: res.body, certificates: [h.app.identity.certPem], caCertificate: h.app.identity.caPem }).ok, 'signed and audited')
  const { licences } = res.json()
  t.same(licences.map((l: { licence: { typeCode: string } }) => l.licence.typeCode).sort(), ['BDCQZ', 'JMSFZ', 'JMSFZ'], '居民身份证 (renewed once) and 不动产权证书')
  for (const l of licences) {
    const v = await h.app.inject({ method: 'POST', url: '/v1/licences/verify', headers: { authorization: `Bearer ${tokens.jn}`, ...context() }, payload: { licence: l.licence, holderId: p0.idNumber } })
    t.equal(v.json().valid, l.status === 'current', `${l.licence.number} (${l.status}): ${v.json().code ?? 'valid'}`)
  }
  const business = await lookup({ holderId: enterprise.creditCode, typeCode: 'YYZZ' })
  t.equal(business.statusCode, 200)
  t.equal(business.json().licences.length, 1)
  t.equal(business.json().licences[0].licence.number, enterprise.creditCode, '营业执照: the number is the credit code')
  const filtered = await lookup({ holderId: p0.idNumber, typeCode: 'YYZZ' })
  t.same(filtered.json().licences, [], 'a person holds no 营业执照')

  const otherDepartment = await lookup({ holderId: p0.idNumber }, context(), tokens.nj)
  t.equal(otherDepartment.json().code, 'POLICY_NO_GRANT', 'the grant is the department\'s, not everyone\'s')
  const otherPurpose = await lookup({ holderId: p0.idNumber }, context({ 'tongban-purpose': 'HS-01' }))
  t.equal(otherPurpose.statusCode, 403, 'another purpose than the granted one')
})
