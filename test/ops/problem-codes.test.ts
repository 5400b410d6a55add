// GET /v1/problems/codes: the codes as words for the screens, public and cacheable, exactly
// the list of src/problems/codes.ts.
import t from 'tap'
import { startNode } from '../helpers/harness.js'
import { PROBLEM_CODES } from '../../src/problems/codes.js'

const h = await startNode({ tag: 'pcodes' })
t.teardown(() => h.close())

t.test('every code with its zh/en words and action, without a token', async (t) => {
  const res = await h.app.inject({ method: 'GET', url: '/v1/problems/codes' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['cache-control'], /public, max-age=\d+/)
  const { codes, fallback } = res.json()
  t.same(codes.map((c: any) => c.code).sort(), Object.keys(PROBLEM_CODES).sort())
  const grant = codes.find((c: any) => c.code === 'POLICY_NO_GRANT')
  t.equal(grant.zh, PROBLEM_CODES.POLICY_NO_GRANT.zh)
  t.equal(grant.en, PROBLEM_CODES.POLICY_NO_GRANT.en)
  t.equal(grant.action, PROBLEM_CODES.POLICY_NO_GRANT.action)
  t.same(grant.status, [...PROBLEM_CODES.POLICY_NO_GRANT.status])
  t.ok(codes.every((c: any) => typeof c.zh === 'string' && /[\u4e00-\u9fff]/.test(c.zh)), 'every code has Chinese words')
  t.equal(fallback.code, 'HTTP_<status>')
})

t.test('hostile requests', async (t) => {
  const other = await h.app.inject({ method: 'POST', url: '/v1/problems/codes', payload: {} })
  t.equal(other.statusCode, 404)
  t.equal(other.json().code, 'NOT_FOUND')
  const query = await h.app.inject({ method: 'GET', url: '/v1/problems/codes?lang=%00' })
  t.not(query.statusCode, 500)
})
