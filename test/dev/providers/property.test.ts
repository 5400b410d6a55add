import t, { type Test } from 'tap'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ValidateFunction } from 'ajv'
import formats from 'ajv-formats'
import type { FastifyInstance } from 'fastify'
import { person, POPULATION_SIZE } from '../../../dev/providers/population.js'
import { buildPropertyProvider, type PropertyProviderOptions } from '../../../dev/providers/property/app.js'
import {
  holdingsOf,
  homeOwners,
  isAdult,
  registryName,
  summarise,
  type Holding,
} from '../../../dev/providers/property/registry.js'
import { loadSchemaFile } from '../../../src/catalog/files.js'
import { domainFormats } from '../../../src/validation/formats.js'
import { parentRegion, regionName } from '../../../src/gb/region.js'

const schemasDir = join(fileURLToPath(new URL('../../..', import.meta.url)), 'schemas')

/** A validator for a schema under schemas/, with the formats the catalogue loader knows. */
const validator = (rel: string): ValidateFunction => {
  const ajv = new Ajv({ allErrors: true, strictTypes: false, strictTuples: false, formats: domainFormats })
  formats.default(ajv)
  return ajv.compile(loadSchemaFile(schemasDir, rel))
}
const verifyRequest = validator('verify/property.request.schema.json')
const verifyResponse = validator('verify/property.response.schema.json')
const detailRequest = validator('property/detail.request.schema.json')
const detailResponse = validator('property/detail.response.schema.json')

const CERTIFICATE = /^苏\((\d{4})\)([\u4e00-\u9fa5]{1,7}[市县])不动产权第(\d{7})号$/

const DAY_MS = 86_400_000
const eighteenth = (birthDate: string): string => `${Number(birthDate.slice(0, 4)) + 18}${birthDate.slice(4)}`

// The README's examples. Person 0 (周洁红) owns one home; person 5 (程健洋) two, one of them
// in a neighbouring county and mortgaged; person 1 (孙永飞) is an adult who owns nothing.
const P0_HOLDINGS: Holding[] = [
  {
    certificateNo: '苏(2021)仪征市不动产权第0271829号',
    region: '321081',
    usage: '住宅',
    area: 61.9,
    registeredOn: '2021-11-13',
    encumbered: { mortgage: false, seizure: false },
  },
]
const P5_HOLDINGS: Holding[] = [
  {
    certificateNo: '苏(2024)南通市不动产权第7647583号',
    region: '320613',
    usage: '住宅',
    area: 125.57,
    registeredOn: '2024-03-09',
    encumbered: { mortgage: false, seizure: false },
  },
  {
    certificateNo: '苏(2024)启东市不动产权第5016371号',
    region: '320681',
    usage: '住宅',
    area: 62.13,
    registeredOn: '2024-07-27',
    encumbered: { mortgage: true, seizure: false },
  },
]

t.test('the README examples', async (t) => {
  t.match(person(0), { idNumber: '321081196204019768', name: '周洁红' })
  t.same(holdingsOf(0), P0_HOLDINGS)
  t.same(summarise(holdingsOf(0)), { hasProperty: true, propertyCount: 1, totalArea: 61.9 })
  t.match(person(5), { idNumber: '320612199108121394', name: '程健洋', region: '320612' })
  t.same(holdingsOf(5), P5_HOLDINGS)
  t.same(summarise(holdingsOf(5)), { hasProperty: true, propertyCount: 2, totalArea: 187.7 })
  t.match(person(1), { idNumber: '320902199607090610', name: '孙永飞', birthDate: '1996-07-09' })
  t.same(holdingsOf(1), [])
  t.same(homeOwners(3), [0, 3, 4])
})

t.test('holdings are deterministic', async (t) => {
  const indices = [0, 5, 4242, 77_777, POPULATION_SIZE - 1]
  const first = indices.map(holdingsOf)
  t.same(indices.map(holdingsOf), first, 'same holdings twice')
  // A second module instance (query string = fresh evaluation) derives the same holdings.
  const fresh = (await import(`../../../dev/providers/property/registry.js?fresh=${Date.now()}`)) as {
    holdingsOf: (i: number) => Holding[]
  }
  t.not(fresh.holdingsOf, holdingsOf, 'really a fresh module')
  t.same(indices.map(fresh.holdingsOf), first, 'same holdings across a fresh import')
})

t.test('adults only, about 60% of them, 1–3 homes in their own city', async (t) => {
  const SAMPLE = 20_000
  let adults = 0
  let owners = 0
  let minorsWithProperty = 0
  let mortgaged = 0
  let units = 0
  const serials = new Set<string>()
  const problems: string[] = []
  for (let i = 0; i < SAMPLE; i++) {
    const p = person(i)
    const holdings = holdingsOf(i)
    if (!isAdult(p)) {
      if (holdings.length) minorsWithProperty++
      continue
    }
    adults++
    if (holdings.length === 0) continue
    owners++
    const homes = holdings.filter((h) => h.usage === '住宅').length
    if (homes < 1 || homes > 3) problems.push(`${i}: ${homes} homes`)
    const city = parentRegion(p.region === '320124' ? '320117' : p.region)
    for (const h of holdings) {
      units++
      if (h.encumbered.mortgage) mortgaged++
      serials.add(h.certificateNo.slice(-9))
      const m = CERTIFICATE.exec(h.certificateNo)
      if (!m) {
        problems.push(`${i}: certificate ${h.certificateNo}`)
        continue
      }
      if (m[1] !== h.registeredOn.slice(0, 4)) problems.push(`${i}: year ${m[1]} vs ${h.registeredOn}`)
      if (m[2] !== registryName(h.region)) problems.push(`${i}: registry ${m[2]} for ${h.region}`)
      if (!regionName(h.region) || parentRegion(h.region) !== city) problems.push(`${i}: ${h.region} outside ${city}`)
      if (h.area < 45 || h.area > 180 || !/^\d+(\.\d{1,2})?$/.test(String(h.area))) problems.push(`${i}: area ${h.area}`)
      if (!(h.registeredOn > eighteenth(p.birthDate)) || h.registeredOn < '2016-01-01' || h.registeredOn > '2025-12-31') {
        problems.push(`${i}: registered ${h.registeredOn}, born ${p.birthDate}`)
      }
      if (Date.parse(h.registeredOn) % DAY_MS !== 0) problems.push(`${i}: date ${h.registeredOn}`)
    }
  }
  t.same(problems, [], 'every holding is well formed')
  t.equal(minorsWithProperty, 0, 'no minor owns property')
  const rate = owners / adults
  t.ok(rate > 0.55 && rate < 0.65, `ownership ${rate.toFixed(3)}`)
  t.equal(serials.size, units, 'certificate serials are unique')
  t.ok(mortgaged > 0 && mortgaged < units * 0.4, `${mortgaged} of ${units} mortgaged`)
})

t.test('the registry names its certificates after the registering authority', async (t) => {
  t.equal(registryName('320115'), '南京市', 'a district: its city')
  t.equal(registryName('320281'), '江阴市', 'a county-level city: itself')
  t.equal(registryName('321322'), '沭阳县', 'a county: itself')
})

/** Starts a provider on an ephemeral loopback port; closed when the test ends. */
async function serve(t: Test, opts?: PropertyProviderOptions): Promise<{ app: FastifyInstance; url: string }> {
  const app = buildPropertyProvider(opts)
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url }
}

const post = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

const answer = async (url: string, path: string, body: unknown): Promise<unknown> => {
  const res = await post(url, path, body)
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`)
  return res.json()
}

t.test('the provider over HTTP', async (t) => {
  const { url } = await serve(t)
  const health = await fetch(`${url}/healthz`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok' })

  const p0 = person(0)
  t.same(await answer(url, '/v1/property/verify', { idNumber: p0.idNumber, name: p0.name }), {
    hasProperty: true,
    propertyCount: 1,
    totalArea: 61.9,
  })
  t.same(await answer(url, '/v1/property/detail', { idNumber: p0.idNumber, name: p0.name }), {
    hasProperty: true,
    properties: P0_HOLDINGS,
  })
  const p5 = person(5)
  t.same(await answer(url, '/v1/property/detail', { idNumber: p5.idNumber, name: p5.name }), {
    hasProperty: true,
    properties: P5_HOLDINGS,
  })
  const p1 = person(1)
  t.same(await answer(url, '/v1/property/verify', { idNumber: p1.idNumber, name: p1.name }), {
    hasProperty: false,
    propertyCount: 0,
    totalArea: 0,
  })
  t.same(await answer(url, '/v1/property/detail', { idNumber: p1.idNumber, name: p1.name }), {
    hasProperty: false,
    properties: [],
  })
})

t.test('a name that does not match the id number: no property', async (t) => {
  const { url } = await serve(t)
  const p5 = person(5)
  for (const name of [person(0).name, `${p5.name} `, p5.name.slice(0, 2), '张三']) {
    const body = { idNumber: p5.idNumber, name }
    t.same(await answer(url, '/v1/property/verify', body), { hasProperty: false, propertyCount: 0, totalArea: 0 }, name)
    t.same(await answer(url, '/v1/property/detail', body), { hasProperty: false, properties: [] }, name)
  }
  // Well-formed ids of nobody in the population, too.
  for (const idNumber of ['11010519491231002X', '320115199003070123']) {
    t.same(await answer(url, '/v1/property/verify', { idNumber, name: '张三' }), { hasProperty: false, propertyCount: 0, totalArea: 0 })
  }
})

t.test('answers agree with the registry and validate against the gateway schemas', async (t) => {
  const { url } = await serve(t)
  const indices = [...homeOwners(30, 1000), 1, 20, 6, 8] // owners, then a non-owner adult, a minor …
  t.notOk(isAdult(person(20)), 'person 20 is a minor')
  for (const i of indices) {
    const p = person(i)
    const body = { idNumber: p.idNumber, name: p.name }
    t.ok(verifyRequest(body) && detailRequest(body), `request for ${i} is valid`)
    const verify = (await answer(url, '/v1/property/verify', body)) as Record<string, unknown>
    const detail = (await answer(url, '/v1/property/detail', body)) as { hasProperty: boolean; properties: Holding[] }
    t.ok(verifyResponse(verify), `verify ${i}: ${JSON.stringify(verifyResponse.errors)}`)
    t.ok(detailResponse(detail), `detail ${i}: ${JSON.stringify(detailResponse.errors)}`)
    t.same(detail.properties, holdingsOf(i))
    // The verification counts homes only and sums their areas exactly.
    const homes = detail.properties.filter((h) => h.usage === '住宅')
    const cents = homes.reduce((s, h) => s + Math.round(h.area * 100), 0)
    t.same(verify, { hasProperty: homes.length > 0, propertyCount: homes.length, totalArea: cents / 100 })
    t.equal(detail.hasProperty, verify.hasProperty)
  }
  // The same question twice over HTTP: the same answer.
  const p = person(indices[0])
  const body = { idNumber: p.idNumber, name: p.name }
  t.same(await answer(url, '/v1/property/detail', body), await answer(url, '/v1/property/detail', body))
})

t.test('bad bodies are 400, nothing coerced', async (t) => {
  const { url } = await serve(t)
  const { idNumber, name } = person(0)
  for (const path of ['/v1/property/verify', '/v1/property/detail']) {
    for (const body of [
      { idNumber },
      { name },
      { idNumber: Number(idNumber.slice(0, 15)), name },
      { idNumber, name: 42 },
      { idNumber, name: '' },
      { idNumber, name: 'x'.repeat(65) },
      { idNumber, name, extra: true },
      { idNumber: idNumber.slice(0, 17), name },
      { idNumber: '11010519491231002x', name },
      [],
      null,
      '{"idNumber":',
    ]) {
      const res = await post(url, path, body)
      t.equal(res.status, 400, `${path} ${JSON.stringify(body)}`)
      await res.arrayBuffer()
    }
  }
  const get = await fetch(`${url}/v1/property/verify`)
  t.equal(get.status, 404, 'POST only')
  await get.arrayBuffer()
})

t.test('delayMs holds every answer', async (t) => {
  const { url } = await serve(t, { delayMs: 300 })
  const { idNumber, name } = person(0)
  const start = performance.now()
  t.same(await answer(url, '/v1/property/verify', { idNumber, name }), { hasProperty: true, propertyCount: 1, totalArea: 61.9 })
  t.ok(performance.now() - start >= 280, 'slow answer')
})
