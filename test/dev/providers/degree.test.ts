// The simulated certificate register (providers/degree): deterministic 学历证书 for the
// synthetic population in the 18-digit number format, adults only, plausible shares by
// cohort, O(1) lookup by number, answers that validate against the gateway's schemas.
import t from 'tap'
import { buildDegreeProvider, degreeAnswer } from '../../../dev/providers/degree/app.js'
import {
  certificatesOf,
  findCertificate,
  graduates,
  highestLevel,
  institutions,
  LEVEL_CODES,
  type Certificate,
} from '../../../dev/providers/degree/records.js'
import { person, POPULATION_SIZE } from '../../../dev/providers/population.js'
import { ageOn } from '../../../dev/providers/reference.js'
import { answer, refusesAll, serve, validator } from '../../helpers/provider-rig.js'

const request = validator('verify/degree.request.schema.json')
const response = validator('verify/degree.response.schema.json')

const NUMBER = /^([0-9]{5})1([0-9]{4})(01|02|05|06)([0-9]{6})$/

t.test('the README examples', async (t) => {
  // 程健洋 (person 5): 东南大学 本科 2012. 孙永飞 (person 1): 专科 2017. 何亮飞 (person 409): 本科, 硕士, 博士.
  t.same(certificatesOf(5), [
    { certificateNo: '102861201205781722', level: '本科', institution: '东南大学', institutionCode: '10286', graduationYear: 2012 },
  ])
  t.same(certificatesOf(1).map((c) => [c.certificateNo, c.level, c.institution, c.graduationYear]), [['140561201706828518', '专科', '徐州工业职业技术学院', 2017]])
  t.same(certificatesOf(409).map((c) => [c.level, c.institution, c.graduationYear]), [
    ['本科', '中国药科大学', 2015],
    ['硕士研究生', '中国矿业大学', 2018],
    ['博士研究生', '江苏大学', 2021],
  ])
  t.same(certificatesOf(0), [], '周洁红 has no higher education')
  t.equal(highestLevel(409), '博士研究生')
  t.same(graduates(3), [1, 3, 4])
})

t.test('certificates are deterministic', async (t) => {
  const indices = [1, 5, 409, 4242, POPULATION_SIZE - 1]
  const first = indices.map(certificatesOf)
  t.same(indices.map(certificatesOf), first)
  const fresh = (await import(`../../../dev/providers/degree/records.js?fresh=${Date.now()}`)) as { certificatesOf: (i: number) => Certificate[] }
  t.not(fresh.certificatesOf, certificatesOf)
  t.same(indices.map(fresh.certificatesOf), first, 'same certificates across a fresh import')
})

t.test('the population: adults, real formats, plausible shares, unique numbers', async (t) => {
  const known = new Map(institutions().map((i) => [i.code, i.name]))
  const numbers = new Set<string>()
  const problems: string[] = []
  const byCohort = new Map<number, [number, number]>()
  const levels: Record<string, number> = {}
  let certificates = 0
  const SAMPLE = 30_000
  for (let i = 0; i < SAMPLE; i++) {
    const p = person(i)
    const certs = certificatesOf(i)
    const decade = Math.floor(+p.birthDate.slice(0, 4) / 10) * 10
    const [n, g] = byCohort.get(decade) ?? [0, 0]
    byCohort.set(decade, [n + 1, g + (certs.length ? 1 : 0)])
    let previous = 0
    for (const c of certs) {
      certificates++
      levels[c.level] = (levels[c.level] ?? 0) + 1
      numbers.add(c.certificateNo)
      const m = NUMBER.exec(c.certificateNo)
      if (!m) {
        problems.push(`${i}: ${c.certificateNo}`)
        continue
      }
      if (known.get(m[1]) !== c.institution || c.institutionCode !== m[1]) problems.push(`${i}: institution ${m[1]} ${c.institution}`)
      if (+m[2] !== c.graduationYear) problems.push(`${i}: year ${m[2]} vs ${c.graduationYear}`)
      if (LEVEL_CODES[c.level] !== m[3]) problems.push(`${i}: level ${m[3]} vs ${c.level}`)
      if (!request({ certificateNo: c.certificateNo, name: p.name, idNumber: p.idNumber })) problems.push(`${i}: request schema refuses ${c.certificateNo}`)
      // Graduated as an adult, before the reference date, each step after the previous.
      const graduated = Date.UTC(c.graduationYear, 5, 30)
      if (ageOn(p, graduated) < 19) problems.push(`${i}: graduated at ${ageOn(p, graduated)}`)
      if (graduated >= Date.parse('2026-01-01')) problems.push(`${i}: graduates in ${c.graduationYear}`)
      if (c.graduationYear <= previous) problems.push(`${i}: ${c.level} in ${c.graduationYear} after ${previous}`)
      previous = c.graduationYear
      if (findCertificate(c.certificateNo)?.holder.index !== i) problems.push(`${i}: lookup ${c.certificateNo}`)
    }
  }
  t.same(problems.slice(0, 20), [], 'every certificate is well formed')
  t.equal(numbers.size, certificates, 'certificate numbers are unique')
  const share = (decade: number) => byCohort.get(decade)![1] / byCohort.get(decade)![0]
  t.ok(share(1940) < 0.05, `born in the 1940s: ${share(1940).toFixed(3)}`)
  t.ok(share(1970) > 0.1 && share(1970) < 0.3, `1970s: ${share(1970).toFixed(3)}`)
  t.ok(share(1990) > 0.45 && share(1990) < 0.65, `1990s: ${share(1990).toFixed(3)}`)
  t.ok(share(2000) < share(1990), 'the youngest have not all graduated yet')
  t.ok(levels['本科'] > levels['专科'] && levels['专科'] > levels['硕士研究生'] && levels['硕士研究生'] > levels['博士研究生'] && levels['博士研究生'] > 0, JSON.stringify(levels))
})

t.test('lookups find only registered certificates', async (t) => {
  const [c] = certificatesOf(5)
  t.equal(findCertificate(c.certificateNo)?.holder.name, '程健洋')
  const variants = [
    c.certificateNo.replace(/^10286/, '10284'), // another school
    c.certificateNo.replace('2012', '2013'), // another year
    c.certificateNo.slice(0, 10) + '02' + c.certificateNo.slice(12), // another level
    c.certificateNo.slice(0, 12) + '999999', // another serial
    c.certificateNo.slice(0, 5) + '5' + c.certificateNo.slice(6), // another school type
    '99999' + c.certificateNo.slice(5), // no such school
    c.certificateNo.slice(0, 17),
    '',
  ]
  for (const v of variants) t.equal(findCertificate(v), undefined, v)
})

t.test('the provider over HTTP: match with the details, anything else a bare no-match', async (t) => {
  const url = await serve(t, buildDegreeProvider())
  const p5 = person(5)
  const [c] = certificatesOf(5)
  const ok = await answer(url, '/v1/degree/verify', { certificateNo: c.certificateNo, name: p5.name, idNumber: p5.idNumber })
  t.same(ok, { match: true, level: '本科', institution: '东南大学', graduationYear: 2012 })
  t.ok(response(ok))
  const other = person(0)
  for (const body of [
    { certificateNo: c.certificateNo, name: other.name, idNumber: p5.idNumber },
    { certificateNo: c.certificateNo, name: p5.name, idNumber: other.idNumber },
    { certificateNo: c.certificateNo, name: `${p5.name} `, idNumber: p5.idNumber },
    { certificateNo: c.certificateNo.replace('2012', '2013'), name: p5.name, idNumber: p5.idNumber },
    { certificateNo: certificatesOf(1)[0].certificateNo, name: p5.name, idNumber: p5.idNumber }, // someone else's
  ]) {
    const a = await answer(url, '/v1/degree/verify', body)
    t.same(a, { match: false }, JSON.stringify(body))
    t.ok(response(a))
  }
  // Every certificate of a sample, over HTTP, as the model says.
  for (const i of graduates(25, 2000)) {
    const p = person(i)
    for (const cert of certificatesOf(i)) {
      const body = { certificateNo: cert.certificateNo, name: p.name, idNumber: p.idNumber }
      t.ok(request(body), `request ${i}`)
      const a = await answer(url, '/v1/degree/verify', body)
      t.ok(response(a), `answer ${i}: ${JSON.stringify(response.errors)}`)
      t.same(a, { match: true, level: cert.level, institution: cert.institution, graduationYear: cert.graduationYear })
      t.same(a, degreeAnswer(body))
    }
  }
})

t.test('bad bodies are 400, nothing coerced', async (t) => {
  const url = await serve(t, buildDegreeProvider())
  const p5 = person(5)
  const certificateNo = certificatesOf(5)[0].certificateNo
  const body = { certificateNo, name: p5.name, idNumber: p5.idNumber }
  await refusesAll(t, url, '/v1/degree/verify', [
    { name: p5.name, idNumber: p5.idNumber },
    { certificateNo, idNumber: p5.idNumber },
    { certificateNo, name: p5.name },
    { ...body, certificateNo: Number(certificateNo) },
    { ...body, certificateNo: certificateNo.slice(0, 17) },
    { ...body, certificateNo: `${certificateNo}0` },
    { ...body, name: '' },
    { ...body, idNumber: p5.idNumber.toLowerCase().slice(0, 17) + 'x' },
    { ...body, extra: true },
    [],
    null,
    '{"certificateNo":',
  ])
  t.notOk(request({ ...body, certificateNo: certificateNo.slice(0, 10) + '03' + certificateNo.slice(12) }), 'the gateway schema knows the level codes')
  t.notOk(request({ ...body, certificateNo: '10286118900578172' + '2' }), 'and the years')
})
