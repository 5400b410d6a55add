// Security headers (src/ops/security-headers.ts, @fastify/helmet) on every kind of answer:
// API JSON, problem+json, 404, Swagger UI at /docs and its spec, the workbench shell and its
// assets. One CSP for all; Swagger UI must still load under it (no inline script, spec and
// bundle from this origin).
import t from 'tap'
import { startNode } from '../helpers/harness.js'

const h = await startNode({ tag: 'sechead' })
t.teardown(() => h.close())

const get = (url: string, headers: Record<string, string> = {}) => h.app.inject({ method: 'GET', url, headers })

function expectHeaders(t: { match: (a: unknown, b: RegExp, m: string) => void; notMatch: (a: unknown, b: RegExp, m: string) => void; equal: (a: unknown, b: unknown, m: string) => void }, res: Awaited<ReturnType<typeof get>>, what: string) {
  const csp = String(res.headers['content-security-policy'] ?? '')
  t.match(csp, /default-src 'none'/, `${what}: CSP default-src 'none'`)
  t.match(csp, /script-src 'self'(;|$)/, `${what}: scripts only from this origin`)
  t.match(csp, /frame-ancestors 'none'/, `${what}: never framed`)
  t.notMatch(csp, /unsafe-eval/, `${what}: no eval`)
  t.match(String(res.headers['strict-transport-security']), /^max-age=31536000; includeSubDomains/, `${what}: HSTS`)
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', `${what}: x-frame-options`)
  t.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: no referrer`)
  t.equal(res.headers['cross-origin-opener-policy'], 'same-origin', `${what}: COOP`)
  t.equal(res.headers['x-powered-by'], undefined, `${what}: no x-powered-by`)
}

t.test('API answers, problems and 404s', async (t) => {
  const node = await get('/v1/node')
  t.equal(node.statusCode, 200)
  expectHeaders(t, node, 'GET /v1/node')
  const problem = await get('/v1/session')
  t.equal(problem.statusCode, 401)
  t.match(problem.headers['content-type'], /application\/problem\+json/)
  expectHeaders(t, problem, '401 problem')
  const missing = await get('/v1/no-such-route')
  t.equal(missing.statusCode, 404)
  expectHeaders(t, missing, '404')
  const invalid = await h.app.inject({ method: 'POST', url: '/v1/catalog/resources', headers: { 'content-type': 'application/json' }, payload: '{' })
  t.ok(invalid.statusCode >= 400 && invalid.statusCode < 500)
  expectHeaders(t, invalid, 'bad JSON')
  // Refused by an early onRequest hook (personal data in the request id header).
  const personal = await get('/v1/node', { 'tongban-request-id': '11010519491231002X' })
  t.equal(personal.statusCode, 400)
  expectHeaders(t, personal, 'refused in a hook')
})

t.test('/docs (Swagger UI) and /docs/json load under the policy', async (t) => {
  let res = await get('/docs')
  for (let hop = 0; hop < 3 && res.statusCode >= 300 && res.statusCode < 400; hop++) res = await get(new URL(String(res.headers.location), 'http://gw/docs/').pathname)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  expectHeaders(t, res, '/docs')
  const scripts = [...res.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)]
  t.ok(scripts.length > 0, 'Swagger UI has scripts')
  for (const [, attrs, body] of scripts) {
    t.match(attrs, /src="[./][^":]*"/, 'each script from this origin (a relative src)')
    t.equal(body.trim(), '', 'no inline script (script-src would block it)')
  }
  t.notMatch(res.body, /\son[a-z]+="/, 'no inline event handlers')
  for (const href of [...res.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])) t.notMatch(href, /^(https?:)?\/\//, `${href}: this origin`)

  const bundle = await get('/docs/static/swagger-ui-bundle.js')
  t.equal(bundle.statusCode, 200)
  const init = await get('/docs/static/swagger-initializer.js')
  t.equal(init.statusCode, 200)
  t.match(init.body, /SwaggerUIBundle/)

  const spec = await get('/docs/json')
  t.equal(spec.statusCode, 200)
  t.equal(spec.json().openapi, '3.1.0')
  expectHeaders(t, spec, '/docs/json')
})

t.test('/workbench: the shell and its assets carry the same policy', async (t) => {
  const shell = await get('/workbench/')
  t.equal(shell.statusCode, 200)
  expectHeaders(t, shell, '/workbench/')
  t.match(String(shell.headers['content-security-policy']), /style-src 'self' 'unsafe-inline'/, 'Element Plus sets inline styles')
  const asset = shell.body.match(/\/workbench\/assets\/[^"]+\.js/)?.[0]
  t.ok(asset, 'the shell names its script')
  const a = await get(asset!)
  t.equal(a.statusCode, 200)
  expectHeaders(t, a, 'an asset')
  t.equal((await get('/v1/node')).headers['content-security-policy'], shell.headers['content-security-policy'], 'one policy for the whole node')
})
