// A system registered through replica A gets a token at replica B at once (the `systems`
// bus message, not the 30 s reload), and a revocation at A refuses it at B. Two real
// gateway processes on one schema and Redis prefix.
import t from 'tap'
import { request } from 'undici'
import { startNode, uniqueName } from '../helpers/harness.js'
import { spawnGateway } from '../helpers/gateway-process.js'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/index.js'
import { createCertificateRequest } from '../../src/onboarding/csr-request.js'

const h = await startNode({ tag: 'onboardrep' })
t.teardown(() => h.close())
const a = await spawnGateway(h, 'a')
t.teardown(() => a.stop())
const b = await spawnGateway(h, 'b')
t.teardown(() => b.stop())

const call = async (base: string, method: 'POST' | 'DELETE', path: string, body?: unknown, token?: string) => {
  const res = await request(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.body.text()
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined }
}
const token = (base: string, clientId: string, keyPem: string) =>
  call(base, 'POST', '/v1/oauth/token', { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: h.assertion(clientId, { keyPem }) })

/** Bounded retry, well under the 30 s periodic reload: only the bus message can satisfy it. */
async function within(ms: number, what: string, ok: () => Promise<boolean>) {
  const end = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

t.test('register at A → token at B at once; revoke at A → refused at B', async (t) => {
  const operator = (await token(a.base, 'js-operator', (await import('../helpers/harness.js')).clientKey('js-operator'))).json.access_token
  t.ok(operator, 'operator token at A')
  const clientId = uniqueName('rep').replace(/_/g, '-').slice(0, 40)
  const { keyPem, csrPem } = await createCertificateRequest(clientId)
  // B has loaded its registry before the registration exists.
  t.equal((await token(b.base, clientId, keyPem)).json.code, 'AUTH_UNKNOWN_CLIENT')
  const reg = await call(a.base, 'POST', '/v1/systems', {
    clientId, name: '江宁区测试系统', department: { code: '11320115MB0000012H', name: '南京市江宁区民政局' }, region: '320115', roles: ['consumer'], csr: csrPem,
  }, operator)
  t.equal(reg.status, 201, JSON.stringify(reg.json))
  await within(10_000, 'token at B', async () => (await token(b.base, clientId, keyPem)).status === 200)
  t.pass('B issues a token for the system registered at A')

  t.equal((await call(a.base, 'DELETE', `/v1/systems/${clientId}/certificate`, undefined, operator)).status, 204)
  await within(10_000, 'refusal at B', async () => (await token(b.base, clientId, keyPem)).json.code === 'AUTH_CLIENT_CERT_REVOKED')
  t.pass('B refuses the system revoked at A')
})
