import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import {
  POPULATION_SIZE,
  findPersonById,
  person,
  personRng,
  samplePersons,
  type Person,
} from '../../../dev/providers/population.js'
import { buildIdentityProvider, type IdentityProviderOptions } from '../../../dev/providers/identity/app.js'
import { checkIdNumber, idCheckCharacter } from '../../../src/gb/id-number.js'
import { isCurrentRegion } from '../../../src/gb/region.js'

t.test('person 0 is the README example', async (t) => {
  t.same(person(0), {
    index: 0,
    idNumber: '321081196204019768',
    name: '周洁红',
    sex: 'F',
    birthDate: '1962-04-01',
    region: '321081',
  })
})

t.test('the population is deterministic', async (t) => {
  const first = [0, 1, 2, 777, 4242, POPULATION_SIZE - 1].map(person)
  t.same(first.map((p) => person(p.index)), first, 'same person twice')
  // A second module instance (query string = fresh evaluation) builds the same people.
  const fresh = (await import(`../../../dev/providers/population.js?fresh=${Date.now()}`)) as {
    person: (i: number) => Person
  }
  t.not(fresh.person, person, 'really a fresh module')
  t.same(first.map((p) => fresh.person(p.index)), first, 'same people across a fresh import')
  t.same(samplePersons(5), samplePersons(5))
  t.equal(personRng(3, 'tax')(), personRng(3, 'tax')())
  t.not(personRng(3, 'tax')(), personRng(3, 'degree')(), 'streams are independent')
})

t.test('generated people are valid and consistent', async (t) => {
  let bad = 0
  for (let i = 0; i < 2000; i++) {
    const p = person(i)
    const r = checkIdNumber(p.idNumber)
    const agrees = r.ok && r.sex === p.sex && r.birthDate === p.birthDate && r.region === p.region
    const named = /^[\u4e00-\u9fff]{2,3}$/.test(p.name)
    const jiangsu = p.region === '320124' || (p.region.startsWith('32') && isCurrentRegion(p.region))
    if (!agrees || !named || !jiangsu) {
      bad++
      t.fail(`person ${i}`, { person: p, check: r })
    }
  }
  t.equal(bad, 0, 'first 2000 pass checkIdNumber and agree with it')
})

t.test('the whole population: unique ids, invertible, about 3% retired Lishui codes', async (t) => {
  const ids = new Set<string>()
  let retired = 0
  let roundTripFailures = 0
  for (let i = 0; i < POPULATION_SIZE; i++) {
    const p = person(i)
    ids.add(p.idNumber)
    if (p.region === '320124') retired++
    if (findPersonById(p.idNumber)?.index !== i) roundTripFailures++
  }
  t.equal(ids.size, POPULATION_SIZE)
  t.equal(roundTripFailures, 0)
  t.ok(retired > 0.02 * POPULATION_SIZE && retired < 0.04 * POPULATION_SIZE, `${retired} retired`)
})

t.test('findPersonById answers only for real members', async (t) => {
  const p = person(12_345)
  t.same(findPersonById(p.idNumber), p)
  const body = p.idNumber.slice(0, 17)
  const otherCheck = idCheckCharacter(body) === '0' ? '1' : '0'
  t.equal(findPersonById(body + otherCheck), undefined, 'wrong check character')
  const otherRegion = (p.region === '320115' ? '320102' : '320115') + p.idNumber.slice(6, 17)
  const moved = otherRegion + idCheckCharacter(otherRegion)
  t.equal(findPersonById(moved), undefined, 'same date and sequence, other county')
  for (const id of ['320115199003070123', '11010519491231002X', '', 'x'.repeat(18), '32011519900230012X']) {
    t.equal(findPersonById(id), undefined, id)
  }
  t.equal(findPersonById(42 as unknown as string), undefined)
  t.throws(() => person(POPULATION_SIZE), RangeError)
  t.throws(() => person(-1), RangeError)
  t.throws(() => person(1.5), RangeError)
})

t.test('samplePersons spreads over the population', async (t) => {
  const s = samplePersons(10)
  t.equal(s.length, 10)
  t.equal(new Set(s.map((p) => p.index)).size, 10)
  t.equal(s[0].index, 0)
  t.ok(s[9].index >= POPULATION_SIZE * 0.9)
  t.equal(samplePersons(0).length, 0)
})

/** Starts a provider on an ephemeral loopback port; closed when the test ends. */
async function serve(t: Test, opts?: IdentityProviderOptions): Promise<{ app: FastifyInstance; url: string }> {
  const app = buildIdentityProvider(opts)
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url }
}

const verify = (url: string, body: unknown, init: RequestInit = {}) =>
  fetch(`${url}/v1/identity/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal,
  })

t.test('the provider over HTTP', async (t) => {
  const { url } = await serve(t)
  const p0 = person(0)
  const p = person(54_321)

  const health = await fetch(`${url}/healthz`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok' })

  for (const [body, match] of [
    [{ idNumber: p0.idNumber, name: p0.name }, true],
    [{ idNumber: p.idNumber, name: p.name }, true],
    [{ idNumber: p.idNumber, name: p0.name }, false],
    [{ idNumber: p.idNumber, name: `${p.name} ` }, false],
    [{ idNumber: '320115199003070123', name: p.name }, false],
  ] as const) {
    const res = await verify(url, body)
    t.equal(res.status, 200)
    t.same(await res.json(), { match }, JSON.stringify(body))
  }
})

t.test('bad bodies are 400', async (t) => {
  const { url } = await serve(t)
  const { idNumber, name } = person(0)
  for (const body of [
    { idNumber },
    { name },
    { idNumber: Number(idNumber.slice(0, 15)), name },
    { idNumber, name: 42 },
    { idNumber, name: '' },
    { idNumber, name, extra: true },
    { idNumber: idNumber.slice(0, 17), name },
    { idNumber: '11010519491231002x', name },
    [],
    '{"idNumber":',
  ]) {
    const res = await verify(url, body)
    t.equal(res.status, 400, JSON.stringify(body))
    await res.arrayBuffer()
  }
})

t.test('delayMs holds every answer', async (t) => {
  const { url } = await serve(t, { delayMs: 300 })
  const { idNumber, name } = person(0)
  const start = performance.now()
  const res = await verify(url, { idNumber, name })
  t.same(await res.json(), { match: true })
  t.ok(performance.now() - start >= 280, 'slow answer')
  await t.rejects(verify(url, { idNumber, name }, { signal: AbortSignal.timeout(100) }), { name: 'TimeoutError' })
})

t.test('x-sim-delay-ms only when fault headers are allowed', async (t) => {
  const { idNumber, name } = person(0)
  const delayed = { headers: { 'x-sim-delay-ms': '300' } }

  const off = await serve(t)
  let start = performance.now()
  t.equal((await verify(off.url, { idNumber, name }, delayed)).status, 200)
  t.ok(performance.now() - start < 250, 'ignored by default')

  const on = await serve(t, { allowFaultHeaders: true })
  start = performance.now()
  t.equal((await verify(on.url, { idNumber, name }, delayed)).status, 200)
  t.ok(performance.now() - start >= 280, 'honoured when allowed')
  const bad = await verify(on.url, { idNumber, name }, { headers: { 'x-sim-delay-ms': 'soon' } })
  t.equal(bad.status, 400)
  await bad.arrayBuffer()
})
