// The OpenAPI 3.1 document generated from the route schemas: valid for an independent
// validator (@readme/openapi-parser), every operation tagged and summarised, errors
// documented as problem+json with example codes, examples on the query routes, Swagger UI
// served at /docs.
import t from 'tap'
import { validate } from '@readme/openapi-parser'
import { startNode } from '../helpers/harness.js'

const h = await startNode({ tag: 'openapi' })
t.teardown(() => h.close())

const res = await h.app.inject({ method: 'GET', url: '/openapi.json' })
const doc = res.json()
type Op = { tags?: string[]; summary?: string; security?: unknown[]; requestBody?: any; responses?: Record<string, any> }
const ops: Array<[string, string, Op]> = Object.entries<Record<string, Op>>(doc.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, op]) => [method.toUpperCase(), path, op] as [string, string, Op]),
)
const hasExample = (o: unknown): boolean =>
  !!o && typeof o === 'object' && ('examples' in o || 'example' in o || Object.values(o).some(hasExample))

t.test('an independent validator accepts the document as OpenAPI 3.1', async (t) => {
  t.equal(res.statusCode, 200)
  t.equal(doc.openapi, '3.1.0')
  const result = await validate(structuredClone(doc))
  t.same(result.valid ? [] : result.errors, [], 'no errors')
  t.equal(result.valid, true)
})

t.test('every operation has tags and a summary', async (t) => {
  t.ok(ops.length > 30, `${ops.length} operations`)
  for (const [m, p, op] of ops) {
    if (!op.tags?.length) t.fail(`${m} ${p}: no tags`)
    if (!op.summary) t.fail(`${m} ${p}: no summary`)
  }
  const paths = new Set(ops.map(([m, p]) => `${m} ${p}`))
  for (const r of ['POST /v1/verify/identity', 'POST /v1/batches', 'GET /v1/batches/{id}', 'GET /v1/batches/{id}/results', 'DELETE /v1/batches/{id}', 'GET /metrics', 'GET /readyz', 'POST /v1/oauth/token']) {
    t.ok(paths.has(r), r)
  }
})

t.test('errors are documented as problem+json with example codes', async (t) => {
  for (const [m, p, op] of ops) {
    const statuses = Object.keys(op.responses ?? {})
    if (op.security?.length && !statuses.includes('401')) t.fail(`${m} ${p}: authenticated but 401 undocumented`)
    if (op.requestBody && !statuses.includes('400')) t.fail(`${m} ${p}: takes a body but 400 undocumented`)
    for (const [status, r] of Object.entries<any>(op.responses ?? {})) {
      if (Number(status) < 400) continue
      const media = r.content?.['application/problem+json'] ?? r.content?.['application/json']
      if (!media) t.fail(`${m} ${p} ${status}: no problem+json body`)
    }
  }
  const verify = ops.find(([m, p]) => m === 'POST' && p === '/v1/verify/identity')![2]
  for (const s of ['400', '401', '403', '404', '429', '502', '503', '504']) t.ok(verify.responses?.[s], `verify documents ${s}`)
  const examples = verify.responses!['403'].content['application/problem+json'].examples
  t.ok(examples.POLICY_NO_GRANT, 'example codes per status')
  t.equal(examples.POLICY_NO_GRANT.value.code, 'POLICY_NO_GRANT')
  t.equal(verify.responses!['429'].content['application/problem+json'].examples.QUOTA_EXCEEDED.value.status, 429)
})

t.test('query routes carry examples of their requests and answers', async (t) => {
  for (const [m, p, op] of ops) {
    if (!(p.startsWith('/v1/verify/') || p === '/v1/batches') || m !== 'POST') continue
    t.ok(hasExample(op.requestBody), `${m} ${p}: request example`)
    t.ok(hasExample(Object.entries(op.responses ?? {}).filter(([s]) => Number(s) < 400)), `${m} ${p}: answer example`)
  }
  const results = ops.find(([m, p]) => m === 'GET' && p === '/v1/batches/{id}/results')![2]
  t.ok(results.responses!['200'].content['application/x-ndjson'], 'results documented as NDJSON')
})

t.test('Swagger UI at /docs', async (t) => {
  const ui = await h.app.inject({ method: 'GET', url: '/docs/' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  t.match(ui.body, /swagger/i)
})

t.test('the token endpoint documents its form fields and the client-assertion 401 codes', async (t) => {
  const op = doc.paths['/v1/oauth/token'].post
  const schema = op.requestBody.content['application/x-www-form-urlencoded'].schema
  t.same(schema.properties.grant_type.examples, ['client_credentials'])
  t.same(schema.properties.client_assertion_type.examples, ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'])
  t.match(schema.properties.client_assertion.description, /iss = sub/)
  const codes401 = Object.keys(op.responses['401'].content['application/problem+json'].examples)
  t.ok(codes401.includes('AUTH_UNKNOWN_CLIENT'))
  t.ok(codes401.includes('AUTH_ASSERTION_REPLAYED'))
  t.notOk(codes401.some((c) => c.startsWith('AUTH_TOKEN_')), 'no access-token codes')
  const codes400 = Object.keys(op.responses['400'].content['application/problem+json'].examples)
  t.ok(codes400.includes('AUTH_UNSUPPORTED_GRANT_TYPE'))
})
