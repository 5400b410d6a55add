// What a body Fastify's JSON parser refuses is called: broken JSON is "not valid JSON";
// valid JSON carrying a prototype-poisoning key is refused on purpose and the detail says
// which rule it broke (the code stays INPUT_MALFORMED_JSON, the stable one clients match).
import t from 'tap'
import { startNode } from '../helpers/harness.js'

const h = await startNode({ tag: 'bodyparse' })
t.teardown(() => h.close())
const token = await h.token('jn-civil-affairs')
const post = (payload: string) => h.app.inject({
  method: 'POST',
  url: '/v1/verify/identity',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'tongban-purpose': 'SA-01', 'tongban-case-id': 'PARSE-1' },
  payload,
})

for (const [name, payload] of [
  ['__proto__', '{"__proto__":{"admin":true},"idNumber":"11010519491231002X","name":"张三"}'],
  ['constructor.prototype', '{"constructor":{"prototype":{"admin":true}},"idNumber":"11010519491231002X","name":"张三"}'],
  ['nested __proto__', '{"idNumber":{"__proto__":{"length":1}},"name":"张三"}'],
]) {
  t.test(`${name}: refused, the detail names the forbidden property`, async (t) => {
    const res = await post(payload)
    t.equal(res.statusCode, 400)
    t.match(res.headers['content-type'], /application\/problem\+json/)
    t.equal(res.json().code, 'INPUT_MALFORMED_JSON')
    t.match(res.json().detail, /forbidden property name/)
  })
}

t.test('broken JSON: not valid JSON', async (t) => {
  const res = await post('{"idNumber":"1101')
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'INPUT_MALFORMED_JSON')
  t.equal(res.json().detail, 'request body is not valid JSON')
})
