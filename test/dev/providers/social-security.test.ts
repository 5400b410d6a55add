// The simulated social insurance agency (providers/social-security, on providers/employment.ts):
// deterministic contribution records for the synthetic population, contributors of working
// age only, careers that start after graduation, answers that validate against the
// gateway's schemas, strict input.
import t from 'tap'
import { buildSocialSecurityProvider, contributionAnswer } from '../../../dev/providers/social-security/app.js'
import { careerOf, contributionsIn, RECORDS_FROM, retirementMonth, type Career } from '../../../dev/providers/employment.js'
import { certificatesOf } from '../../../dev/providers/degree/records.js'
import { person, POPULATION_SIZE } from '../../../dev/providers/population.js'
import { LAST_RECORD_MONTH_NUMBER, monthNumber, monthString } from '../../../dev/providers/reference.js'
import { isCurrentRegion, tierOfRegion } from '../../../src/gb/region.js'
import { answer, post, refusesAll, serve, validator } from '../../helpers/provider-rig.js'

const request = validator('verify/social-security.request.schema.json')
const response = validator('verify/social-security.response.schema.json')

const jobsOf = (i: number) => careerOf(i).jobs.map((j) => [monthString(j.from), monthString(j.to), j.region])

t.test('the README examples', async (t) => {
  // 程健洋 (person 5): graduated 2012, insured in 南通 since; 孙永飞 (person 1): a gap in 2021–22;
  // 周洁红 (person 0) retired without employee insurance.
  t.same(jobsOf(5), [['2012-07', '2014-09', '320614'], ['2014-11', '2016-09', '320612'], ['2016-10', '2025-12', '320612']])
  t.same(jobsOf(1), [['2017-07', '2021-05', '320904'], ['2022-12', '2023-06', '320902'], ['2023-07', '2025-12', '320902']])
  t.same(jobsOf(0), [])
  const p5 = person(5)
  t.same(contributionAnswer({ idNumber: p5.idNumber, name: p5.name, from: '2024-01', to: '2025-12' }), { contributing: true, monthsPaid: 24, insuredRegion: '320612' })
  t.same(contributionAnswer({ idNumber: p5.idNumber, name: p5.name, from: '2014-01', to: '2014-12' }), { contributing: true, monthsPaid: 11, insuredRegion: '320612' }, 'Jan–Sep and Nov–Dec: the last job names the region')
  const p1 = person(1)
  t.same(contributionAnswer({ idNumber: p1.idNumber, name: p1.name, from: '2021-06', to: '2022-11' }), { contributing: false, monthsPaid: 0 })
  t.same(contributionAnswer({ idNumber: p1.idNumber, name: p1.name, from: '2021-01', to: '2022-12' }), { contributing: true, monthsPaid: 6, insuredRegion: '320902' })
})

t.test('careers are deterministic', async (t) => {
  const indices = [0, 1, 5, 4242, POPULATION_SIZE - 1]
  const first = indices.map(careerOf)
  t.same(indices.map(careerOf), first)
  const fresh = (await import(`../../../dev/providers/employment.js?fresh=${Date.now()}`)) as { careerOf: (i: number) => Career }
  t.not(fresh.careerOf, careerOf)
  t.same(indices.map(fresh.careerOf), first, 'same careers across a fresh import')
})

t.test('contributors are of working age; careers start after graduation', async (t) => {
  const problems: string[] = []
  let ever = 0
  let workingAge = 0
  let contributingNow = 0
  const SAMPLE = 30_000
  const dec2025 = monthNumber('2025-12')
  for (let i = 0; i < SAMPLE; i++) {
    const p = person(i)
    const { jobs } = careerOf(i)
    const certs = certificatesOf(i)
    const born = monthNumber(p.birthDate)
    const age2025 = (dec2025 - born) / 12
    if (age2025 >= 25 && age2025 < 50) {
      workingAge++
      if (contributionsIn(careerOf(i), dec2025, dec2025).months) contributingNow++
    }
    if (jobs.length) ever++
    let previousEnd = -Infinity
    for (const j of jobs) {
      if (j.from > j.to || j.from <= previousEnd) problems.push(`${i}: jobs overlap or reversed`)
      previousEnd = j.to
      if ((j.from - born) / 12 < 18) problems.push(`${i}: working at ${((j.from - born) / 12).toFixed(1)}`)
      if (j.to >= retirementMonth(p, certs.length > 0)) problems.push(`${i}: working after retirement`)
      if (j.to > LAST_RECORD_MONTH_NUMBER) problems.push(`${i}: beyond the records`)
      if (!j.region.startsWith('32') || !isCurrentRegion(j.region) || tierOfRegion(j.region) !== 'county') problems.push(`${i}: region ${j.region}`)
    }
    if (jobs.length && certs.length && jobs[0].from < monthNumber(`${certs.at(-1)!.graduationYear}-07`)) problems.push(`${i}: working before graduating`)
    // Counting agrees with the jobs.
    const all = contributionsIn(careerOf(i), 0, 10_000_000)
    const expected = jobs.reduce((s, j) => s + Math.max(0, j.to - Math.max(j.from, RECORDS_FROM) + 1), 0)
    if (all.months !== expected) problems.push(`${i}: ${all.months} months, jobs say ${expected}`)
  }
  t.same(problems.slice(0, 20), [], 'every career is plausible')
  t.ok(ever / SAMPLE > 0.5 && ever / SAMPLE < 0.8, `${((ever / SAMPLE) * 100).toFixed(0)}% ever insured`)
  const now = contributingNow / workingAge
  t.ok(now > 0.5 && now < 0.85, `${(now * 100).toFixed(0)}% of those aged 25–49 contribute in 2025-12`)
})

t.test('the provider over HTTP: answers agree with the model and the gateway schemas', async (t) => {
  const url = await serve(t, buildSocialSecurityProvider())
  const periods: Array<[string, string]> = [['2024-01', '2025-12'], ['1990-01', '2099-12'], ['2016-03', '2016-03'], ['2030-01', '2031-12']]
  for (let i = 0; i < 40; i++) {
    const p = person(i)
    for (const [from, to] of periods) {
      const body = { idNumber: p.idNumber, name: p.name, from, to }
      t.ok(request(body), `request ${i}`)
      const a = await answer(url, '/v1/social-security/verify', body)
      t.ok(response(a), `answer ${i}: ${JSON.stringify(response.errors)}`)
      const { months, lastRegion } = contributionsIn(careerOf(i), monthNumber(from), monthNumber(to))
      t.same(a, months ? { contributing: true, monthsPaid: months, insuredRegion: lastRegion } : { contributing: false, monthsPaid: 0 })
      t.ok(a.monthsPaid <= monthNumber(to) - monthNumber(from) + 1, 'no more months than the period has')
    }
  }
  // A name that does not agree, an unknown id number: no contributions.
  const p5 = person(5)
  for (const body of [
    { idNumber: p5.idNumber, name: person(0).name, from: '2024-01', to: '2025-12' },
    { idNumber: '11010519491231002X', name: '张三', from: '2024-01', to: '2025-12' },
  ]) {
    t.same(await answer(url, '/v1/social-security/verify', body), { contributing: false, monthsPaid: 0 })
  }
})

t.test('bad bodies are 400, nothing coerced; a reversed period is refused', async (t) => {
  const url = await serve(t, buildSocialSecurityProvider())
  const p5 = person(5)
  const body = { idNumber: p5.idNumber, name: p5.name, from: '2024-01', to: '2025-12' }
  await refusesAll(t, url, '/v1/social-security/verify', [
    { ...body, from: '2025-12', to: '2024-01' },
    { ...body, from: '2024-13' },
    { ...body, from: '2024-00' },
    { ...body, from: '1989-12' },
    { ...body, to: '2024-1' },
    { ...body, to: '202401' },
    { ...body, to: 202401 },
    { ...body, idNumber: p5.idNumber.slice(0, 17) },
    { ...body, name: '' },
    { ...body, extra: 1 },
    { idNumber: p5.idNumber, name: p5.name, from: '2024-01' },
    [],
    null,
  ])
  t.notOk(request({ ...body, from: '2024-13' }))
  t.notOk(request({ ...body, idNumber: p5.idNumber.slice(0, 17) + (p5.idNumber[17] === '0' ? '1' : '0') }), 'the gateway checks the id number')
  const res = await post(url, '/v1/social-security/verify', { ...body, from: '2025-12', to: '2024-01' })
  t.match(await res.json(), { error: /from must not be after to/ })
})
