// Onboarding from a certificate request: the department keeps its key, the node's CA signs
// its CSR, the system gets tokens at once; renewal replaces the key, revocation refuses it;
// a department's credit code keeps one name. Real PostgreSQL, Redis and CA keys.
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import forge from 'node-forge'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, startNode, uniqueName } from '../helpers/harness.js'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/index.js'
import { createCertificateRequest } from '../../src/onboarding/csr-request.js'
import { loadSigningCa } from '../../src/onboarding/csr-signer.js'
import { Problem } from '../../src/problems/problem.js'

const h = await startNode({ tag: 'onboard' })
t.teardown(() => h.close())
const operator = await h.token('js-operator')
const consumer = await h.token('jn-civil-affairs')

const DEPT = { code: '11320115MB0000012H', name: '南京市江宁区民政局' }
const newId = () => uniqueName('sys').replace(/_/g, '-').slice(0, 40)
const body = async (clientId: string, extra: Record<string, unknown> = {}) => ({
  clientId, name: '江宁区测试系统', department: DEPT, region: '320115', roles: ['consumer'],
  csr: (await createCertificateRequest(clientId)).csrPem, ...extra,
})
const post = (payload: unknown, token = operator, url = '/v1/systems') =>
  h.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload: payload as object })
const tokenWith = (clientId: string, keyPem: string) =>
  h.app.inject({ method: 'POST', url: '/v1/oauth/token', payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: h.assertion(clientId, { keyPem }) } })

t.test('a system registered from its CSR gets a token with the key it kept; renew and revoke', async (t) => {
  const clientId = newId()
  const req = await createCertificateRequest(clientId)
  const res = await post({ ...(await body(clientId)), csr: req.csrPem })
  t.equal(res.statusCode, 201, res.body)
  const out = res.json()
  t.same(Object.keys(out).sort(), ['caCertificate', 'certificate', 'clientId', 'notAfter', 'serial'])
  const cert = new X509Certificate(out.certificate)
  t.ok(cert.verify(new X509Certificate(out.caCertificate).publicKey), 'signed by the node CA')
  t.match(cert.subject, new RegExp(`CN=${clientId}`))
  t.equal((await tokenWith(clientId, req.keyPem)).statusCode, 200, 'token at once with the department key')

  const one = await h.app.inject({ url: `/v1/systems/${clientId}`, headers: { authorization: `Bearer ${operator}` } })
  t.equal(one.statusCode, 200)
  t.equal(one.json().certificate.serial, out.serial)
  t.notMatch(one.body, /PRIVATE KEY|BEGIN CERTIFICATE/, 'metadata only')
  const list = await h.app.inject({ url: '/v1/systems', headers: { authorization: `Bearer ${operator}` } })
  t.ok(list.json().systems.some((s: { clientId: string }) => s.clientId === clientId))

  const next = await createCertificateRequest(clientId)
  const renewed = await post({ csr: next.csrPem }, operator, `/v1/systems/${clientId}/certificate`)
  t.equal(renewed.statusCode, 200, renewed.body)
  t.not(renewed.json().serial, out.serial)
  t.equal((await tokenWith(clientId, next.keyPem)).statusCode, 200, 'new key works')
  t.equal((await tokenWith(clientId, req.keyPem)).statusCode, 401, 'old key replaced')

  const status = (value: string) => h.app.inject({ method: 'PUT', url: `/v1/systems/${clientId}/status`, headers: { authorization: `Bearer ${operator}` }, payload: { status: value } })
  t.equal((await status('suspended')).json().status, 'suspended')
  t.equal((await tokenWith(clientId, next.keyPem)).json().code, 'AUTH_CLIENT_SUSPENDED', 'suspended: no token')
  t.equal((await status('active')).statusCode, 200)
  t.equal((await tokenWith(clientId, next.keyPem)).statusCode, 200, 'active again')
  t.equal((await status('gone')).json().code, 'INPUT_INVALID')

  const del = await h.app.inject({ method: 'DELETE', url: `/v1/systems/${clientId}/certificate`, headers: { authorization: `Bearer ${operator}` } })
  t.equal(del.statusCode, 204, del.body)
  const refused = await tokenWith(clientId, next.keyPem)
  t.equal(refused.json().code, 'AUTH_CLIENT_CERT_REVOKED')
})

t.test('hostile registrations get stable problem codes', async (t) => {
  const id = newId()
  const good = await body(id)
  const wrongSig = (() => {
    const csr = forge.pki.certificationRequestFromPem(good.csr)
    const other = forge.pki.rsa.generateKeyPair({ bits: 512, e: 0x10001 })
    // Same signature, different key: the self-signature no longer verifies.
    const c = csr as unknown as { publicKey: unknown; certificationRequestInfo: unknown }
    c.publicKey = other.publicKey
    c.certificationRequestInfo = null
    return forge.pki.certificationRequestToPem(csr)
  })()
  const cases: [string, unknown, number, string][] = [
    ['bad PEM', { ...good, csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----' }, 400, 'ONBOARD_CSR_MALFORMED'],
    ['wrong signature', { ...good, csr: wrongSig }, 400, 'ONBOARD_CSR_SIGNATURE_INVALID'],
    ['CN mismatch', { ...good, clientId: newId() }, 400, 'ONBOARD_CSR_CN_MISMATCH'],
    ['weak key', { ...good, csr: (await createCertificateRequest(id, 1024)).csrPem }, 400, 'ONBOARD_CSR_KEY_WEAK'],
    ['unknown role', { ...good, roles: ['root'] }, 400, 'INPUT_INVALID'],
    ['conflicting roles', { ...good, roles: ['catalog-admin', 'auditor'] }, 400, 'ONBOARD_ROLES_CONFLICT'],
    ['bad region', { ...good, region: '329999' }, 400, 'ONBOARD_REGION_UNKNOWN'],
    ['bad credit code', { ...good, department: { ...DEPT, code: '11320115MB0000012J' } }, 400, 'INPUT_INVALID_CREDIT_CODE'],
    ['other name for a known credit code', { ...good, department: { ...DEPT, name: '江宁区民政局（改名）' } }, 409, 'DEPARTMENT_NAME_CONFLICT'],
    ['huge body', { ...good, name: 'x'.repeat(200_000) }, 413, 'INPUT_TOO_LARGE'],
  ]
  for (const [what, payload, status, code] of cases) {
    const res = await post(payload)
    t.equal(res.statusCode, status, `${what}: ${res.body.slice(0, 200)}`)
    t.equal(res.json().code, code, what)
    t.match(res.headers['content-type'], /application\/problem\+json/, what)
  }
  t.equal((await post(good, consumer)).json().code, 'AUTH_ROLE_REQUIRED', 'operators only')
  t.equal((await h.query('SELECT 1 FROM systems WHERE client_id = $1', [id])).length, 0, 'nothing registered')
  t.equal((await post(good)).statusCode, 201)
  t.equal((await post(good)).json().code, 'ONBOARD_SYSTEM_EXISTS')
  const unknown = await h.app.inject({ method: 'DELETE', url: `/v1/systems/${newId()}/certificate`, headers: { authorization: `Bearer ${operator}` } })
  t.equal(unknown.json().code, 'ONBOARD_SYSTEM_UNKNOWN')
})

t.test('departments: seeded from systems.json; a known credit code keeps its name', async (t) => {
  const rows = await h.query('SELECT name FROM departments WHERE code = $1', [DEPT.code])
  t.same(rows, [{ name: DEPT.name }], 'two systems of one department seeded without conflict')
})

t.test('catalogue entries: the provider department keeps its registered name', async (t) => {
  const admin = await h.token('js-catalog-admin')
  const entry = JSON.parse(readFileSync(join(ROOT, 'catalog/101001-00001.json'), 'utf8'))
  const known = (await h.query('SELECT name FROM departments WHERE code = $1', [entry.provider.code]))[0]
  t.equal(known?.name, entry.provider.name, 'seeded from the catalogue')
  delete entry.version
  delete entry.service.verifyService
  const renamed = { ...entry, code: '101001/00009', provider: { ...entry.provider, name: `${entry.provider.name}（新）` } }
  const res = await h.app.inject({ method: 'POST', url: '/v1/catalog/resources', headers: { authorization: `Bearer ${admin}` }, payload: renamed })
  t.equal(res.statusCode, 409, res.body)
  t.equal(res.json().code, 'DEPARTMENT_NAME_CONFLICT')
  t.equal(res.json().registeredName, entry.provider.name)
  t.same((await h.query("SELECT 1 FROM catalog_resources WHERE code = '101001/00009'")), [], 'nothing stored')
  const same = await h.app.inject({ method: 'POST', url: '/v1/catalog/resources', headers: { authorization: `Bearer ${admin}` }, payload: { ...renamed, provider: entry.provider } })
  t.equal(same.statusCode, 201, same.body)
})

t.test('a node without its CA key answers ONBOARD_CA_OFFLINE', async (t) => {
  const err = (() => {
    try {
      loadSigningCa(h.config.pki.caFile, join(h.config.pki.dir, 'no-such-ca.key.pem'))
    } catch (e) {
      return e
    }
  })()
  t.ok(err instanceof Problem)
  t.match(err, { status: 503, code: 'ONBOARD_CA_OFFLINE' })
})

t.test('every onboarding action is audited, with no certificate material', async (t) => {
  const end = Date.now() + 15_000
  let rows: any[] = []
  while (Date.now() < end) {
    rows = await h.query(`SELECT operation, decision, reason, consumer_system, record::text AS record FROM audit_records WHERE operation LIKE 'systems.%'`)
    const ops = new Set(rows.map((r) => `${r.operation} ${r.decision}`))
    if (['systems.register allowed', 'systems.register denied', 'systems.renew allowed', 'systems.revoke allowed', 'systems.read allowed', 'systems.list allowed', 'systems.status allowed'].every((o) => ops.has(o))) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const ops = new Set(rows.map((r) => `${r.operation} ${r.decision}`))
  for (const o of ['systems.register allowed', 'systems.register denied', 'systems.renew allowed', 'systems.revoke allowed', 'systems.read allowed', 'systems.list allowed', 'systems.status allowed']) t.ok(ops.has(o), o)
  t.ok(rows.some((r) => r.reason === 'ONBOARD_CSR_CN_MISMATCH'), 'refusal reason recorded')
  t.ok(rows.every((r) => r.consumer_system === 'js-operator' || r.consumer_system === 'jn-civil-affairs'))
  t.notOk(rows.some((r) => /BEGIN|PRIVATE/.test(r.record)), 'no PEM in the audit log')
})

t.test('OpenAPI documents the onboarding routes from their schemas', async (t) => {
  const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json()
  t.ok(doc.paths['/v1/systems'].post.responses['201'])
  t.ok(doc.paths['/v1/systems'].get)
  t.ok(doc.paths['/v1/systems/{clientId}/certificate'].post && doc.paths['/v1/systems/{clientId}/certificate'].delete)
  t.ok(doc.paths['/v1/systems/{clientId}'].get)
})
