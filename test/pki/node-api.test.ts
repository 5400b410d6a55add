// The public and operator surface: node identity, JWKS, purposes, catalogue browsing,
// health, OpenAPI generated from the route schemas, problem+json for unknown routes.
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { startNode } from '../helpers/harness.js'
import { certThumbprint } from '../../src/pki/thumbprint.js'

const h = await startNode({ tag: 'nodeapi' })
t.teardown(() => h.close())
const get = (url: string, token?: string) =>
  h.app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} })

t.test('GET /v1/node publishes the certificate that signs the evidence', async (t) => {
  const res = await get('/v1/node')
  t.equal(res.statusCode, 200)
  const node = res.json()
  t.match(node, { id: '320000', region: '320000', tier: 'province', auditAlg: 'RS256' })
  t.equal(node.kid, certThumbprint(node.certificate))
  const cert = new X509Certificate(node.certificate)
  t.ok(cert.checkIssued(new X509Certificate(node.caCertificate)))
})

t.test('JWKS carries the key with x5c and x5t#S256 = kid', async (t) => {
  const { keys } = (await get('/.well-known/jwks.json')).json()
  t.equal(keys.length, 1)
  t.equal(keys[0].kid, h.app.identity.kid)
  t.equal(keys[0]['x5t#S256'], h.app.identity.kid)
  t.equal(keys[0].kty, 'RSA')
  const der = Buffer.from(keys[0].x5c[0], 'base64')
  t.equal(new X509Certificate(der).fingerprint256, h.app.identity.cert.fingerprint256)
})

t.test('purposes list', async (t) => {
  const { purposes } = (await get('/v1/purposes')).json()
  t.ok(purposes.find((p: { code: string }) => p.code === 'SA-01'))
})

t.test('catalogue browsing needs a token and hides upstream bindings', async (t) => {
  t.equal((await get('/v1/catalog/resources')).statusCode, 401)
  const token = await h.token('nj-housing')
  const list = (await get('/v1/catalog/resources', token)).json().resources
  t.ok(list.length >= 3)
  const identity = list.find((r: { code: string }) => r.code === '101001/00001')
  t.equal(identity.sharing.type, 'unconditional')
  t.notOk(identity.service.upstream, 'upstream addresses stay inside the node')
  const one = await get(`/v1/catalog/resources/${encodeURIComponent('101001/00001')}`, token)
  t.equal(one.json().name, '居民身份信息核验')
  t.equal((await get('/v1/catalog/resources/101001/00001', token)).json().code, '101001/00001')
  const none = (await get('/v1/catalog/resources/301002/00001', token)).json()
  t.equal(none.sharing.type, 'none')
  t.ok(none.sharing.legalBasis, 'the catalogue says why a resource is not shared')
  const missing = await get('/v1/catalog/resources/999999/00001', token)
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'RESOURCE_NOT_FOUND')
})

t.test('health and readiness', async (t) => {
  t.equal((await get('/healthz')).statusCode, 200)
  const ready = await get('/readyz')
  t.equal(ready.statusCode, 200)
  // (plus a calendar entry, whose warning depends on today's date and the holidays file)
  t.match(ready.json(), { status: 'ready', postgres: 'ok', redis: 'ok', audit: 'ok', calendar: { status: /^(ok|warning)$/ } })
})

t.test('OpenAPI 3.1 from the route schemas, Swagger UI at /docs', async (t) => {
  const doc = (await get('/openapi.json')).json()
  t.equal(doc.openapi, '3.1.0')
  const verify = doc.paths['/v1/verify/identity'].post
  t.ok(verify.requestBody.content['application/json'].schema.properties.idNumber)
  t.ok(verify.parameters.find((p: { name: string }) => p.name === 'tongban-purpose'))
  t.ok(verify.responses['200'])
  t.ok(verify.responses['403'])
  t.ok(doc.paths['/v1/oauth/token'])
  t.equal((await get('/docs')).statusCode < 400, true)
})

t.test('unknown routes are problem+json 404', async (t) => {
  const res = await get('/v1/nope/../../etc/passwd')
  t.equal(res.statusCode, 404)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().code, 'NOT_FOUND')
})
