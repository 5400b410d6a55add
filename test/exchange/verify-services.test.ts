// POST /v1/verify/{service} for all five services end to end: real PostgreSQL, Redis and the
// simulated departments (identity, tax, property — provincial and Nanjing's —, degree,
// social security) answering from one synthetic population. For each service: a match with
// only the unconditional items, a no-match, invalid identifiers refused with their INPUT_*
// code before anything leaves the gateway; the resolution of `property` by the caller's
// region; and conditional items released only as a grant names them.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { person, type Person } from '../../dev/providers/population.js'
import { enterprise } from '../../dev/providers/enterprises.js'
import { certificatesOf } from '../../dev/providers/degree/records.js'
import { careerOf, contributionsIn } from '../../dev/providers/employment.js'
import { holdingsOf, summarise } from '../../dev/providers/property/registry.js'
import { nanjingHoldingsOf } from '../../dev/providers/nanjing-property/app.js'
import { enterpriseTaxYear, personTaxYear } from '../../dev/providers/tax/records.js'
import { monthNumber } from '../../dev/providers/reference.js'
import { decodeEvidence, digest, verifyEvidence } from '../../src/evidence/evidence.js'
import { creditCheckCharacter } from '../../src/gb/credit-code.js'

const h = await startNode({ tag: 'services' })
t.teardown(() => h.close())

const tokens = {
  jn: await h.token('jn-civil-affairs'), // 江宁区民政局, 320115
  nj: await h.token('nj-housing'), // 南京市住房保障和房产局, 320100
  sz: await h.token('sz-civil-affairs'), // 苏州市民政局, 320500
  tax: await h.token('js-tax'), // 国家税务总局江苏省税务局 (provider)
}

const verify = (service: string, payload: unknown, token = tokens.jn, headers: Record<string, string> = context()) =>
  h.app.inject({
    method: 'POST',
    url: `/v1/verify/${service}`,
    headers: { authorization: `Bearer ${token}`, ...headers },
    payload: payload as object,
  })

const resourceOf = (res: { headers: Record<string, unknown> }) => decodeEvidence(res.headers['tongban-evidence'] as string).record.resource

// The README's examples: 程健洋 (person 5) graduated from 东南大学 in 2012, works and pays
// tax in 南通, owns two homes there (none in Nanjing); 泰州晟锦纺织有限公司 (enterprise 2).
const p5 = person(5)
const company = enterprise(2)
const [p5Certificate] = certificatesOf(5)

t.test('the examples are what the models say', async (t) => {
  t.match(p5, { name: '程健洋', idNumber: '320612199108121394' })
  t.match(p5Certificate, { certificateNo: '102861201205781722', level: '本科', institution: '东南大学', graduationYear: 2012 })
  t.match(company, { creditCode: '913212047173084912', name: '泰州晟锦纺织有限公司' })
  t.ok(enterpriseTaxYear(2, 2024).taxPaid)
  t.ok(personTaxYear(5, 2024).taxPaid)
  t.equal(contributionsIn(careerOf(5), monthNumber('2024-01'), monthNumber('2025-12')).months, 24)
})

t.test('each service answers an unconditional caller with its unconditional items only', async (t) => {
  const cases: Array<[string, object, Record<string, unknown>, string]> = [
    ['identity', { idNumber: p5.idNumber, name: p5.name }, { match: true }, '101001/00001'],
    ['tax', { taxpayerType: 'organization', taxpayerId: company.creditCode, year: 2024 }, { taxPaid: true }, '305001/00001'],
    ['tax', { taxpayerType: 'individual', taxpayerId: p5.idNumber, year: 2024 }, { taxPaid: true }, '305001/00001'],
    ['degree', { certificateNo: p5Certificate.certificateNo, name: p5.name, idNumber: p5.idNumber }, { match: true, level: '本科', institution: '东南大学', graduationYear: 2012 }, '306001/00001'],
    ['social-security', { idNumber: p5.idNumber, name: p5.name, from: '2024-01', to: '2025-12' }, { contributing: true }, '307001/00001'],
    // A Jiangning caller: Nanjing's own registry answers, for homes in Nanjing.
    ['property', { idNumber: p5.idNumber, name: p5.name }, { hasProperty: false }, '103002/00003'],
  ]
  for (const [service, payload, expected, resource] of cases) {
    const res = await verify(service, payload)
    t.equal(res.statusCode, 200, `${service}: ${res.body}`)
    t.equal(res.body, JSON.stringify(expected), `${service}: exactly the unconditional items`)
    const v = verifyEvidence({ header: res.headers['tongban-evidence'] as string, body: res.body, certificates: [h.app.identity.certPem], caCertificate: h.app.identity.caPem })
    t.ok(v.ok, `${service}: evidence verifies`)
    const record = decodeEvidence(res.headers['tongban-evidence'] as string).record
    t.equal(record.resource, resource, `${service} is answered by ${resource}`)
    t.equal(record.decision, 'allowed')
    t.equal(record.responseDigest, digest(res.body))
    t.match(record.subject, /^hmac-sha256:[0-9a-f]{64}$/, `${service}: the subject is audited as a keyed hash`)
    t.notMatch(JSON.stringify(record), new RegExp(`${p5.idNumber}|${company.creditCode}`), 'no raw identifier in the record')
  }
})

t.test('a tax query by id number is audited under the same keyed subject as any query for that person', async (t) => {
  const a = await verify('tax', { taxpayerType: 'individual', taxpayerId: p5.idNumber, year: 2023 })
  const b = await verify('identity', { idNumber: p5.idNumber, name: p5.name })
  t.equal(resourceOf(a), '305001/00001')
  t.equal(
    decodeEvidence(a.headers['tongban-evidence'] as string).record.subject,
    decodeEvidence(b.headers['tongban-evidence'] as string).record.subject,
    'an auditor asking "who looked up this id number" finds the tax query too',
  )
})

t.test('no match: the same minimal answer whatever is wrong', async (t) => {
  const other = person(0) // 周洁红
  const cases: Array<[string, object, Record<string, unknown>]> = [
    ['identity', { idNumber: p5.idNumber, name: other.name }, { match: false }],
    ['degree', { certificateNo: p5Certificate.certificateNo, name: other.name, idNumber: p5.idNumber }, { match: false }],
    ['degree', { certificateNo: p5Certificate.certificateNo, name: p5.name, idNumber: other.idNumber }, { match: false }],
    ['degree', { certificateNo: p5Certificate.certificateNo.replace(/^10286/, '10284'), name: p5.name, idNumber: p5.idNumber }, { match: false }],
    // A tax year without records, a company that did not exist yet, a retired person.
    ['tax', { taxpayerType: 'individual', taxpayerId: p5.idNumber, year: 2010 }, { taxPaid: false }],
    ['tax', { taxpayerType: 'organization', taxpayerId: enterprise(0).creditCode, year: 2020 }, { taxPaid: false }],
    ['tax', { taxpayerType: 'individual', taxpayerId: other.idNumber, year: 2024 }, { taxPaid: false }],
    ['social-security', { idNumber: p5.idNumber, name: other.name, from: '2024-01', to: '2025-12' }, { contributing: false }],
    ['social-security', { idNumber: other.idNumber, name: other.name, from: '2024-01', to: '2025-12' }, { contributing: false }],
    ['social-security', { idNumber: p5.idNumber, name: p5.name, from: '1995-01', to: '2005-12' }, { contributing: false }],
    ['property', { idNumber: p5.idNumber, name: other.name }, { hasProperty: false }],
  ]
  for (const [service, payload, expected] of cases) {
    const res = await verify(service, payload)
    t.equal(res.statusCode, 200, `${service} ${JSON.stringify(payload)}: ${res.body}`)
    t.same(res.json(), expected, `${service} ${JSON.stringify(payload)}`)
  }
})

t.test('invalid identifiers are refused before the upstream, with their codes', async (t) => {
  const swapCheck = (code: string) => code.slice(0, 17) + (code[17] === '0' ? '1' : '0')
  const foreign17 = `91990000${company.creditCode.slice(8, 17)}` // no province 99
  const cases: Array<[string, object, string]> = [
    ['tax', { taxpayerType: 'organization', taxpayerId: swapCheck(company.creditCode), year: 2024 }, 'INPUT_INVALID_CREDIT_CODE'],
    ['tax', { taxpayerType: 'organization', taxpayerId: enterprise(0).creditCode.toLowerCase(), year: 2024 }, 'INPUT_INVALID_CREDIT_CODE'],
    ['tax', { taxpayerType: 'organization', taxpayerId: company.creditCode.slice(0, 17), year: 2024 }, 'INPUT_INVALID_CREDIT_CODE'],
    ['tax', { taxpayerType: 'organization', taxpayerId: foreign17 + creditCheckCharacter(foreign17), year: 2024 }, 'INPUT_UNKNOWN_REGION'],
    // The taxpayer type decides which standard the identifier must meet.
    ['tax', { taxpayerType: 'organization', taxpayerId: p5.idNumber, year: 2024 }, 'INPUT_INVALID_CREDIT_CODE'],
    ['tax', { taxpayerType: 'individual', taxpayerId: company.creditCode, year: 2024 }, 'INPUT_INVALID_ID_NUMBER'],
    ['tax', { taxpayerType: 'individual', taxpayerId: swapCheck(p5.idNumber), year: 2024 }, 'INPUT_INVALID_ID_NUMBER'],
    ['tax', { taxpayerType: 'individual', taxpayerId: '990115199003070128', year: 2024 }, 'INPUT_UNKNOWN_REGION'],
    ['tax', { taxpayerType: 'person', taxpayerId: p5.idNumber, year: 2024 }, 'INPUT_INVALID'],
    ['tax', { taxpayerType: 'individual', taxpayerId: p5.idNumber, year: '2024' }, 'INPUT_INVALID'],
    ['tax', { taxpayerType: 'individual', taxpayerId: p5.idNumber, year: 1990 }, 'INPUT_INVALID'],
    ['tax', { taxpayerType: 'individual', taxpayerId: p5.idNumber }, 'INPUT_INVALID'],
    ['degree', { certificateNo: p5Certificate.certificateNo, name: p5.name, idNumber: swapCheck(p5.idNumber) }, 'INPUT_INVALID_ID_NUMBER'],
    ['degree', { certificateNo: p5Certificate.certificateNo, name: p5.name, idNumber: '320612199113121394' }, 'INPUT_INVALID_ID_NUMBER'],
    ['degree', { certificateNo: p5Certificate.certificateNo.slice(0, 17), name: p5.name, idNumber: p5.idNumber }, 'INPUT_INVALID'],
    ['degree', { certificateNo: '102861201203781722', name: p5.name, idNumber: p5.idNumber }, 'INPUT_INVALID'], // level 03
    ['degree', { certificateNo: p5Certificate.certificateNo, name: '', idNumber: p5.idNumber }, 'INPUT_INVALID'],
    ['social-security', { idNumber: swapCheck(p5.idNumber), name: p5.name, from: '2024-01', to: '2025-12' }, 'INPUT_INVALID_ID_NUMBER'],
    ['social-security', { idNumber: p5.idNumber, name: p5.name, from: '2024-13', to: '2025-12' }, 'INPUT_INVALID'],
    ['social-security', { idNumber: p5.idNumber, name: p5.name, from: '2024-1', to: '2025-12' }, 'INPUT_INVALID'],
    ['social-security', { idNumber: p5.idNumber, name: p5.name, from: '2024-01' }, 'INPUT_INVALID'],
    ['property', { idNumber: swapCheck(p5.idNumber), name: p5.name }, 'INPUT_INVALID_ID_NUMBER'],
    ['identity', { idNumber: swapCheck(p5.idNumber), name: p5.name }, 'INPUT_INVALID_ID_NUMBER'],
  ]
  for (const [service, payload, code] of cases) {
    const res = await verify(service, payload)
    t.equal(res.statusCode, 400, `${service} ${JSON.stringify(payload)}`)
    t.equal(res.json().code, code, `${service} ${JSON.stringify(payload)}: ${res.body}`)
    t.notMatch(res.body, new RegExp(`${p5.idNumber.slice(0, 14)}|${company.creditCode.slice(0, 14)}`), 'the problem does not echo the identifier')
  }
  // Refused requests are audited too, with the reason and without the identifier.
  const rows = await h.query(`SELECT reason, record::text AS record FROM audit_records WHERE decision <> 'allowed'`)
  for (const code of ['INPUT_INVALID_CREDIT_CODE', 'INPUT_UNKNOWN_REGION', 'INPUT_INVALID_ID_NUMBER']) {
    t.ok(rows.some((r) => r.reason === code), `a refusal for ${code} is audited`)
  }
  t.notOk(rows.some((r) => r.record.includes(company.creditCode.slice(0, 17)) || r.record.includes(p5.idNumber.slice(0, 17))), 'without the identifiers')
})

t.test('a period that ends before it starts is refused at the gateway, audited, and never sent', async (t) => {
  const payload = { idNumber: p5.idNumber, name: p5.name, from: '2025-12', to: '2024-01' }
  // Refused in the validate step: before, the agency's own 400 came back as 502 UPSTREAM_REJECTED.
  const res = await verify('social-security', payload)
  t.equal(res.statusCode, 400, res.body)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { code: 'INPUT_PERIOD_REVERSED', detail: 'from must not be after to', requestId: String })
  t.notMatch(res.body, p5.idNumber.slice(0, 14), 'the problem does not echo the identifier')

  // The same request through the catalogue route, which validates with the engine's ajv.
  const direct = await h.app.inject({
    method: 'POST',
    url: `/v1/resources/${encodeURIComponent('307001/00001')}/verify`,
    headers: { authorization: `Bearer ${tokens.jn}`, ...context() },
    payload,
  })
  t.equal(direct.statusCode, 400, direct.body)
  t.equal(direct.json().code, 'INPUT_PERIOD_REVERSED')

  // Audited like the other input refusals: decision and reason, without the identifier.
  const rows = await h.query(`SELECT decision, reason, record::text AS record FROM audit_records WHERE request_id = $1`, [res.json().requestId])
  t.equal(rows.length, 1, 'one audit record for the refusal')
  t.equal(rows[0].reason, 'INPUT_PERIOD_REVERSED')
  t.not(rows[0].decision, 'allowed')
  t.match(JSON.parse(rows[0].record), { decision: 'denied', consumer: { system: 'jn-civil-affairs' }, purpose: 'SA-01', caseId: 'JN-2026-1000' })
  t.notOk(rows[0].record.includes(p5.idNumber.slice(0, 17)), 'without the identifier')

  // Batch items are validated by the query engine and coded by the worker the same way.
  const item = await h.app.exchange.answer({
    requestId: 'item-period-reversed',
    principal: { system: 'jn-civil-affairs', department: '11320115MB0000012H', region: '320115', tier: 'county', roles: ['consumer'] },
    target: { kind: 'resources', code: '307001/00001', operation: 'verify' },
    context: { purpose: 'SA-01', caseId: 'JN-2026-1000' },
    body: payload,
    state: {},
  })
  t.equal(item.code, 'INPUT_PERIOD_REVERSED', 'a batch item with a reversed period fails alone with the same code')

  // The bounds: a one-month period is fine; a malformed month stays INPUT_INVALID even when
  // it would also sort after `to`; a bad id number keeps its own code.
  const oneMonth = await verify('social-security', { ...payload, from: '2024-06', to: '2024-06' })
  t.equal(oneMonth.statusCode, 200, oneMonth.body)
  const badMonth = await verify('social-security', { ...payload, from: '2025-13', to: '2024-01' })
  t.equal(badMonth.json().code, 'INPUT_INVALID')
  const badId = await verify('social-security', { ...payload, idNumber: p5.idNumber.slice(0, 17) + (p5.idNumber[17] === '0' ? '1' : '0') })
  t.equal(badId.json().code, 'INPUT_INVALID_ID_NUMBER')
})

t.test('the other services have no rule across fields: tax and degree years are single fields', async (t) => {
  // A future tax year and a certificate from a year the person was a child are well-formed
  // questions with a "no" answer, not malformed ones: the bureau and 学信网 answer them.
  const tax = await verify('tax', { taxpayerType: 'individual', taxpayerId: p5.idNumber, year: 2090 })
  t.equal(tax.statusCode, 200, tax.body)
  t.same(tax.json(), { taxPaid: false })
  const early = p5Certificate.certificateNo.slice(0, 6) + '1995' + p5Certificate.certificateNo.slice(10)
  const degree = await verify('degree', { certificateNo: early, name: p5.name, idNumber: p5.idNumber })
  t.equal(degree.statusCode, 200, degree.body)
  t.same(degree.json(), { match: false })
})

t.test('verify/property resolves to the registry nearest the caller', async (t) => {
  // Someone with a home in Nanjing, and 程健洋, whose homes are in 南通.
  let nanjinger: Person | undefined
  for (let i = 0; !nanjinger; i++) if (nanjingHoldingsOf(i).some((h) => h.usage === '住宅')) nanjinger = person(i)
  t.ok(summarise(holdingsOf(5)).hasProperty, '程健洋 owns homes in Jiangsu')
  t.notOk(summarise(nanjingHoldingsOf(5)).hasProperty, '… none of them in Nanjing')

  const cases: Array<[string, string, Person, boolean]> = [
    ['nj-housing (320100, Nanjing itself)', tokens.nj, p5, false],
    ['jn-civil-affairs (320115, a district of Nanjing)', tokens.jn, p5, false],
    ['sz-civil-affairs (320500, Suzhou)', tokens.sz, p5, true],
    ['nj-housing (320100)', tokens.nj, nanjinger, true],
    ['sz-civil-affairs (320500)', tokens.sz, nanjinger, true],
  ]
  for (const [who, token, p, has] of cases) {
    const res = await verify('property', { idNumber: p.idNumber, name: p.name }, token)
    t.equal(res.statusCode, 200, who)
    t.same(res.json(), { hasProperty: has }, `${who}: ${p.name}`)
    const expected = token === tokens.sz ? '103002/00001' : '103002/00003'
    t.equal(resourceOf(res), expected, `${who} is answered by ${expected === '103002/00003' ? '南京市不动产登记中心' : '江苏省自然资源厅'}`)
  }
  // The catalogue resource itself stays callable by code, whoever calls.
  const direct = await h.app.inject({
    method: 'POST',
    url: `/v1/resources/${encodeURIComponent('103002/00001')}/verify`,
    headers: { authorization: `Bearer ${tokens.nj}`, ...context() },
    payload: { idNumber: p5.idNumber, name: p5.name },
  })
  t.same(direct.json(), { hasProperty: true }, 'a Nanjing caller may still ask the provincial registry by its code')
})

t.test('conditional items need a grant naming them: the band is not the amount', async (t) => {
  const payload = { taxpayerType: 'organization', taxpayerId: company.creditCode, year: 2024 }
  const applied = await h.app.inject({
    method: 'POST',
    url: '/v1/applications',
    headers: { authorization: `Bearer ${tokens.nj}` },
    payload: {
      resource: '305001/00001', items: ['amountBand'], purposes: ['SA-01'], basis: '《江苏省人才安居办法》：核验申请企业上年度纳税规模',
      validTo: new Date(Date.now() + 30 * 86_400_000).toISOString(), dailyQuota: 100,
    },
  })
  t.equal(applied.statusCode, 201, applied.body)
  t.equal(applied.json().providerDepartment, '11320000MB0000105J', 'the tax bureau decides')
  const decided = await h.app.inject({
    method: 'POST',
    url: `/v1/applications/${applied.json().id}/decision`,
    headers: { authorization: `Bearer ${tokens.tax}` },
    payload: { decision: 'approve', reason: '符合条件' },
  })
  t.equal(decided.statusCode, 200, decided.body)

  const granted = await verify('tax', payload, tokens.nj)
  t.same(granted.json(), { taxPaid: true, amountBand: enterpriseTaxYear(2, 2024).amountBand }, 'the band, not the exact amount')
  t.equal(decodeEvidence(granted.headers['tongban-evidence'] as string).record.grant, decided.json().grantId)
  const other = await verify('tax', payload, tokens.jn)
  t.same(other.json(), { taxPaid: true }, 'another department: the unconditional item only')
})
