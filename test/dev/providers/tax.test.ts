// The simulated tax bureau (providers/tax): deterministic tax-paid records for the synthetic
// enterprises and persons, in agreement with the other departments (income tax only on
// wages the social insurance agency sees contributions for), answers that validate against
// the gateway's schemas, strict input.
import t from 'tap'
import { buildTaxProvider, taxAnswer } from '../../../dev/providers/tax/app.js'
import {
  AMOUNT_BANDS,
  ANNUAL_2019,
  MONTHLY_2011,
  MONTHLY_2018,
  amountBand,
  enterpriseTaxYear,
  FIRST_TAX_YEAR,
  LAST_TAX_YEAR,
  personTaxYear,
  taxOn,
  type TaxYear,
} from '../../../dev/providers/tax/records.js'
import { ENTERPRISE_COUNT, enterprise } from '../../../dev/providers/enterprises.js'
import { person, POPULATION_SIZE } from '../../../dev/providers/population.js'
import { careerOf, contributionsIn } from '../../../dev/providers/employment.js'
import { ageOn, monthNumber } from '../../../dev/providers/reference.js'
import { answer, refusesAll, serve, validator } from '../../helpers/provider-rig.js'

const request = validator('verify/tax.request.schema.json')
const response = validator('verify/tax.response.schema.json')

t.test('the README examples', async (t) => {
  // 泰州晟锦纺织有限公司 (enterprise 2), 程健洋 (person 5), 周洁红 (person 0, retired).
  t.same(enterpriseTaxYear(2, 2024), { taxPaid: true, amountBand: '10-100万', amount: 373_700.39 })
  t.same(personTaxYear(5, 2024), { taxPaid: true, amountBand: '<1万', amount: 3031.72 })
  t.same(personTaxYear(0, 2024), { taxPaid: false, amountBand: '0', amount: 0 })
  t.same(enterpriseTaxYear(0, 2022), { taxPaid: false, amountBand: '0', amount: 0 }, 'founded 2023-11-19')
  t.same(enterpriseTaxYear(0, 2024), { taxPaid: true, amountBand: '1-10万', amount: 23_670.49 })
})

t.test('income tax brackets as the law sets them', async (t) => {
  // From 2019: annual, 3% up to 36 000, 10% − 2 520 up to 144 000 …
  t.equal(taxOn(0, ANNUAL_2019), 0)
  t.equal(taxOn(-5000, ANNUAL_2019), 0)
  t.equal(taxOn(36_000, ANNUAL_2019), 1080)
  t.equal(taxOn(50_000, ANNUAL_2019), 2480)
  t.equal(taxOn(1_000_000, ANNUAL_2019), 268_080)
  // Until Sept 2018: monthly with 3 500 allowance; Oct – Dec 2018: the new monthly table.
  t.equal(taxOn(1500, MONTHLY_2011), 45)
  t.equal(taxOn(6500, MONTHLY_2011), 745)
  t.equal(taxOn(6500, MONTHLY_2018), 440)
  // Continuous at every bracket boundary (the quick deductions are right).
  for (const table of [ANNUAL_2019, MONTHLY_2011, MONTHLY_2018]) {
    for (const [upTo] of table.slice(0, -1)) t.ok(Math.abs(taxOn(upTo, table) - taxOn(upTo + 0.01, table)) < 0.01, `continuous at ${upTo}`)
  }
})

t.test('amount bands', async (t) => {
  t.same([0, 0.01, 9999.99, 10_000, 99_999.99, 100_000, 999_999.99, 1_000_000, 9_999_999.99, 10_000_000, 5e9].map(amountBand),
    ['0', '<1万', '<1万', '1-10万', '1-10万', '10-100万', '10-100万', '100-1000万', '100-1000万', '≥1000万', '≥1000万'])
})

t.test('records are deterministic', async (t) => {
  const sample = () => [
    ...[0, 2, 777, 4242, ENTERPRISE_COUNT - 1].map((i) => enterpriseTaxYear(i, 2021)),
    ...[1, 3, 5, 4242, POPULATION_SIZE - 1].map((i) => personTaxYear(i, 2023)),
  ]
  const first = sample()
  t.same(sample(), first)
  const fresh = (await import(`../../../dev/providers/tax/records.js?fresh=${Date.now()}`)) as { enterpriseTaxYear: (i: number, y: number) => TaxYear }
  t.not(fresh.enterpriseTaxYear, enterpriseTaxYear)
  t.same(fresh.enterpriseTaxYear(777, 2021), first[2], 'same across a fresh import')
})

const wellFormed = (y: TaxYear): boolean =>
  y.taxPaid === y.amount > 0 &&
  y.amountBand === amountBand(y.amount) &&
  Number(y.amount.toFixed(2)) === y.amount

t.test('enterprises pay only while they exist; larger ones more and more often', async (t) => {
  const problems: string[] = []
  const paying: Record<string, [number, number]> = {}
  const medians: Record<string, number[]> = {}
  for (let i = 0; i < ENTERPRISE_COUNT; i += 3) {
    const e = enterprise(i)
    for (let year = FIRST_TAX_YEAR - 2; year <= LAST_TAX_YEAR + 1; year++) {
      const y = enterpriseTaxYear(i, year)
      if (!wellFormed(y)) problems.push(`${i}/${year}: ${JSON.stringify(y)}`)
      const existed = e.establishedOn <= `${year}-12-31` && (!e.dissolvedOn || e.dissolvedOn > `${year}-01-01`)
      if (y.taxPaid && (!existed || year < FIRST_TAX_YEAR || year > LAST_TAX_YEAR)) problems.push(`${i}/${year}: paid, founded ${e.establishedOn}, dissolved ${e.dissolvedOn}`)
      if (year === 2024 && existed && e.establishedOn < '2024-01-01' && (!e.dissolvedOn || e.dissolvedOn > '2025-01-01')) {
        const [n, p] = paying[e.size] ?? [0, 0]
        paying[e.size] = [n + 1, p + (y.taxPaid ? 1 : 0)]
        if (y.taxPaid) (medians[e.size] ??= []).push(y.amount)
      }
    }
  }
  t.same(problems.slice(0, 20), [], 'no tax outside the company’s life or the records; bands agree with amounts')
  const rate = (s: string) => paying[s][1] / paying[s][0]
  t.ok(rate('micro') > 0.5 && rate('micro') < 0.75, `micro ${rate('micro').toFixed(2)}`)
  t.ok(rate('small') > 0.85 && rate('medium') > 0.95, `small ${rate('small').toFixed(2)}, medium ${rate('medium').toFixed(2)}`)
  const median = (s: string) => medians[s].sort((a, b) => a - b)[medians[s].length >> 1]
  t.ok(median('micro') < median('small') && median('small') < median('medium') && median('medium') < median('large'), 'larger companies pay more')
})

t.test('persons pay income tax only on wages on record: working age, contributing', async (t) => {
  const problems: string[] = []
  let payers2025 = 0
  let contributors2025 = 0
  for (let i = 0; i < POPULATION_SIZE; i += 13) {
    const p = person(i)
    const career = careerOf(i)
    for (let year = FIRST_TAX_YEAR; year <= LAST_TAX_YEAR; year++) {
      const y = personTaxYear(i, year)
      if (!wellFormed(y)) problems.push(`${i}/${year}: ${JSON.stringify(y)}`)
      if (!y.taxPaid) continue
      // Agreement with the social insurance agency: wages taxed ⇒ contributions that year.
      if (contributionsIn(career, monthNumber(`${year}-01`), monthNumber(`${year}-12`)).months === 0) problems.push(`${i}/${year}: taxed without contributions`)
      if (ageOn(p, Date.UTC(year, 11, 31)) < 18) problems.push(`${i}/${year}: a minor taxed`)
      if (y.amount > 2_000_000) problems.push(`${i}/${year}: implausible ${y.amount}`)
    }
    const contributed = contributionsIn(career, monthNumber('2025-01'), monthNumber('2025-12')).months > 0
    if (contributed) contributors2025++
    if (personTaxYear(i, 2025).taxPaid) payers2025++
  }
  t.same(problems.slice(0, 20), [], 'every taxed year has contributions; no minor is taxed')
  const share = payers2025 / contributors2025
  t.ok(share > 0.3 && share < 0.8, `${(share * 100).toFixed(0)}% of 2025 contributors paid income tax`)
  t.same(personTaxYear(5, 2010), { taxPaid: false, amountBand: '0', amount: 0 }, 'no records before 2016')
  t.same(personTaxYear(5, 2026), { taxPaid: false, amountBand: '0', amount: 0 }, 'none after the last full year')
})

t.test('the provider over HTTP: answers agree with the records and the gateway schemas', async (t) => {
  const url = await serve(t, buildTaxProvider())
  const health = await fetch(`${url}/healthz`)
  t.same(await health.json(), { status: 'ok' })
  const queries = [
    ...[0, 1, 2, 3, 4, 5, 6, 7, 999].map((i) => ({ taxpayerType: 'organization' as const, taxpayerId: enterprise(i).creditCode, year: 2024 })),
    ...[0, 1, 3, 5, 11, 32].map((i) => ({ taxpayerType: 'individual' as const, taxpayerId: person(i).idNumber, year: 2023 })),
    { taxpayerType: 'individual' as const, taxpayerId: person(5).idNumber, year: 1999 },
  ]
  for (const q of queries) {
    t.ok(request(q), `request valid: ${JSON.stringify(request.errors)}`)
    const a = await answer(url, '/v1/tax/verify', q)
    t.ok(response(a), `answer valid: ${JSON.stringify(response.errors)}`)
    t.same(a, taxAnswer(q))
  }
  t.same(await answer(url, '/v1/tax/verify', queries[2]), enterpriseTaxYear(2, 2024))
  // Well-formed identifiers the bureau does not know: nothing paid.
  for (const q of [
    { taxpayerType: 'organization', taxpayerId: '11320000MB0000105J', year: 2024 },
    { taxpayerType: 'individual', taxpayerId: '11010519491231002X', year: 2024 },
    { taxpayerType: 'individual', taxpayerId: enterprise(2).creditCode, year: 2024 }, // a code is not a person
    { taxpayerType: 'organization', taxpayerId: person(5).idNumber, year: 2024 }, // nor the reverse
  ]) {
    t.same(await answer(url, '/v1/tax/verify', q), { taxPaid: false, amountBand: '0', amount: 0 }, JSON.stringify(q))
  }
})

t.test('the request schema checks the identifier by the taxpayer type', async (t) => {
  const company = enterprise(2).creditCode
  const id = person(5).idNumber
  t.ok(request({ taxpayerType: 'organization', taxpayerId: company, year: 2024 }))
  t.ok(request({ taxpayerType: 'individual', taxpayerId: id, year: 2024 }))
  t.notOk(request({ taxpayerType: 'organization', taxpayerId: id, year: 2024 }), 'an id number is not a credit code')
  t.notOk(request({ taxpayerType: 'individual', taxpayerId: company, year: 2024 }), 'a credit code is not an id number')
  t.notOk(request({ taxpayerType: 'organization', taxpayerId: company.slice(0, 17) + '0', year: 2024 }), 'check character')
  t.notOk(request({ taxpayerType: 'organization', taxpayerId: company, year: 1993 }), 'before 1994')
  t.notOk(request({ taxpayerType: 'organization', taxpayerId: company, year: 2024.5 }))
  t.ok(response({ taxPaid: true }), 'filtered answers validate')
  t.notOk(response({ taxPaid: true, amountBand: '1万-10万' }), 'bands are an enumeration')
  t.same(response.schema && (response.schema as { properties: { amountBand: { enum: string[] } } }).properties.amountBand.enum, AMOUNT_BANDS)
})

t.test('bad bodies are 400, nothing coerced', async (t) => {
  const url = await serve(t, buildTaxProvider())
  const company = enterprise(2).creditCode
  await refusesAll(t, url, '/v1/tax/verify', [
    { taxpayerId: company, year: 2024 },
    { taxpayerType: 'organization', year: 2024 },
    { taxpayerType: 'organization', taxpayerId: company },
    { taxpayerType: 'enterprise', taxpayerId: company, year: 2024 },
    { taxpayerType: 'organization', taxpayerId: company, year: '2024' },
    { taxpayerType: 'organization', taxpayerId: company, year: 2024.5 },
    { taxpayerType: 'organization', taxpayerId: company, year: 1990 },
    { taxpayerType: 'organization', taxpayerId: enterprise(0).creditCode.toLowerCase(), year: 2024 },
    { taxpayerType: 'organization', taxpayerId: company.slice(0, 17), year: 2024 },
    { taxpayerType: 'organization', taxpayerId: company, year: 2024, extra: 1 },
    [],
    null,
    '{"taxpayerType":',
  ])
})

t.test('delayMs holds every answer', async (t) => {
  const url = await serve(t, buildTaxProvider({ delayMs: 300 }))
  const start = performance.now()
  await answer(url, '/v1/tax/verify', { taxpayerType: 'organization', taxpayerId: enterprise(2).creditCode, year: 2024 })
  t.ok(performance.now() - start >= 280, 'slow answer')
})
