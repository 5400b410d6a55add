// The simulated 南京市不动产登记中心 (providers/nanjing-property): the provincial register's
// units that lie in Nanjing, nothing else, answered with the same verification.
import t from 'tap'
import { buildNanjingPropertyProvider, nanjingAnswer, nanjingHoldingsOf } from '../../../dev/providers/nanjing-property/app.js'
import { holdingsOf, REFERENCE_DATE as REGISTRY_REFERENCE_DATE, summarise } from '../../../dev/providers/property/registry.js'
import { REFERENCE_DATE } from '../../../dev/providers/reference.js'
import { person } from '../../../dev/providers/population.js'
import { parentRegion } from '../../../src/gb/region.js'
import { answer, refusesAll, serve, validator } from '../../helpers/provider-rig.js'

const request = validator('verify/property.request.schema.json')
const response = validator('verify/property.response.schema.json')

t.test('the README examples', async (t) => {
  // 何娟家 (person 3): a home in 秦淮区; 彭子 (person 29, id issued under the retired Lishui
  // code 320124): a home in 溧水区; 程健洋 (person 5): two homes in 南通, none in Nanjing.
  t.same(nanjingHoldingsOf(3).map((h) => [h.certificateNo, h.region]), [['苏(2017)南京市不动产权第8697281号', '320104']])
  t.match(person(29), { name: '彭子', region: '320124' })
  t.same(nanjingHoldingsOf(29).map((h) => h.region), ['320117'])
  t.same(nanjingHoldingsOf(5), [])
  t.ok(holdingsOf(5).length > 0)
  const p3 = person(3)
  t.same(nanjingAnswer({ idNumber: p3.idNumber, name: p3.name }), { hasProperty: true, propertyCount: 1, totalArea: 146.79 })
})

t.test('every simulated department describes the same day', async (t) => {
  t.equal(REFERENCE_DATE, REGISTRY_REFERENCE_DATE)
})

t.test('the city registry holds exactly the provincial units in Nanjing', async (t) => {
  const problems: string[] = []
  let nanjingOwners = 0
  for (let i = 0; i < 20_000; i++) {
    const all = holdingsOf(i)
    const city = nanjingHoldingsOf(i)
    const expected = all.filter((h) => parentRegion(h.region) === '320100')
    if (JSON.stringify(city) !== JSON.stringify(expected)) problems.push(`${i}`)
    if (city.some((h) => h.usage === '住宅')) nanjingOwners++
  }
  t.same(problems.slice(0, 10), [])
  t.ok(nanjingOwners > 100, `${nanjingOwners} home owners in Nanjing`)
})

t.test('the provider over HTTP', async (t) => {
  const url = await serve(t, buildNanjingPropertyProvider())
  for (const i of [0, 1, 3, 5, 29, 38]) {
    const p = person(i)
    const body = { idNumber: p.idNumber, name: p.name }
    t.ok(request(body))
    const a = await answer(url, '/v1/property/verify', body)
    t.ok(response(a), JSON.stringify(response.errors))
    t.same(a, summarise(nanjingHoldingsOf(i)))
  }
  const p3 = person(3)
  t.same(await answer(url, '/v1/property/verify', { idNumber: p3.idNumber, name: person(5).name }), { hasProperty: false, propertyCount: 0, totalArea: 0 }, 'a name that does not agree')
  await refusesAll(t, url, '/v1/property/verify', [{ idNumber: p3.idNumber }, { idNumber: p3.idNumber, name: p3.name, extra: 1 }, { idNumber: 32010419940124568, name: p3.name }, null])
})
