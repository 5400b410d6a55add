// Onboarding a department whose HSM makes EC keys, end to end: `tongban pki request --ec`
// (or openssl) makes a P-256 / P-384 key and CSR, POST /v1/systems has the node's RSA CA
// certify the EC key, the department's ES256 / ES384 client assertion gets a token, and the
// token verifies an identity whose evidence checks out. Hostile requests (a self-signature
// that does not verify, an unsupported curve or key type, SHA-1, a short RSA key) and
// assertions with an algorithm the key does not fix get stable codes. Real PostgreSQL,
// Redis, CA keys and openssl.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AsnConvert } from '@peculiar/asn1-schema'
import { CertificationRequest } from '@peculiar/asn1-csr'
import { SubjectPublicKeyInfo } from '@peculiar/asn1-x509'
import { context, startNode, uniqueName } from '../helpers/harness.js'
import { run as pki } from '../../src/cli/pki.js'
import { CLIENT_ASSERTION_TYPE, EvidenceVerifier, signJwt } from '../../packages/client/src/index.js'
import { createCertificateRequest } from '../../src/onboarding/csr-request.js'
import { person } from '../../dev/providers/population.js'

const h = await startNode({ tag: 'onboardec' })
const dir = mkdtempSync(join(tmpdir(), 'tongban-ec-'))
t.teardown(async () => {
  await h.close()
  rmSync(dir, { recursive: true, force: true })
})
const operator = await h.token('js-operator')
const DEPT = { code: '11320115MB0000012H', name: '南京市江宁区民政局' }
const newId = () => uniqueName('ec').replace(/_/g, '-').slice(0, 40)
const quiet = { out: () => {}, err: () => {} }
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })

const register = (clientId: string, csr: string) =>
  h.app.inject({
    method: 'POST', url: '/v1/systems', headers: { authorization: `Bearer ${operator}` },
    payload: { clientId, name: '江宁区HSM系统', department: DEPT, region: '320115', roles: ['consumer'], csr },
  })
const tokenWith = (assertion: string) =>
  h.app.inject({ method: 'POST', url: '/v1/oauth/token', payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion } })
const claims = (clientId: string) => {
  const iat = Math.floor(Date.now() / 1000)
  return { iss: clientId, sub: clientId, aud: `${h.config.node.publicUrl}/v1/oauth/token`, jti: `jti-${Math.random().toString(36).slice(2)}`, iat, exp: iat + 60 }
}
const p0 = person(0)

/** The department's whole first afternoon with a key it made itself. */
async function onboardAndVerify(t: Test, clientId: string, csrPem: string, keyPem: string, alg: 'ES256' | 'ES384') {
  const res = await register(clientId, csrPem)
  t.equal(res.statusCode, 201, res.body.slice(0, 300))
  const cert = new X509Certificate(res.json().certificate)
  const ca = new X509Certificate(res.json().caCertificate)
  t.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'issued and signed by the node CA (RSA)')
  t.equal(ca.publicKey.asymmetricKeyType, 'rsa')
  t.equal(cert.publicKey.asymmetricKeyType, 'ec', 'the certificate carries the EC key of the request')
  t.ok(cert.publicKey.equals(createPublicKey(keyPem)), 'the very key the department kept')
  t.match(cert.subject, new RegExp(`CN=${clientId}`))
  t.match(cert.subject, /O=南京市江宁区民政局/, 'Chinese names survive (UTF8String)')

  const assertion = h.assertion(clientId, { keyPem })
  t.equal(JSON.parse(Buffer.from(assertion.split('.')[0], 'base64url').toString()).alg, alg, `the SDK signs ${alg} with that key`)
  const token = await tokenWith(assertion)
  t.equal(token.statusCode, 200, token.body)
  const access = token.json().access_token as string

  const answer = await h.app.inject({
    method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${access}`, ...context() },
    payload: { idNumber: p0.idNumber, name: p0.name },
  })
  t.equal(answer.statusCode, 200, answer.body)
  t.equal(answer.json().match, true)
  const verifier = new EvidenceVerifier([h.app.identity.caPem])
  verifier.addCertificate(h.app.identity.certPem)
  t.ok(verifier.verify(String(answer.headers['tongban-evidence']), answer.body).ok, 'the answer carries evidence that verifies')
  const [row] = await h.query('SELECT consumer_system FROM audit_records WHERE request_id = $1', [answer.headers['tongban-request-id']])
  t.same(row, { consumer_system: clientId }, 'audited under the EC client')
  return access
}

t.test('tongban pki request --ec → POST /v1/systems → ES256 token → a verify call', async (t) => {
  const clientId = newId()
  const out = join(dir, 'cli')
  t.equal(await pki(['request', '--ec', '--client-id', clientId, '--out', out], quiet), 0)
  const keyPem = readFileSync(join(out, `${clientId}.key.pem`), 'utf8')
  t.equal(createPrivateKey(keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1', 'a P-256 key')
  const csrPem = readFileSync(join(out, `${clientId}.csr.pem`), 'utf8')
  openssl('req', '-in', join(out, `${clientId}.csr.pem`), '-verify', '-noout')
  await onboardAndVerify(t, clientId, csrPem, keyPem, 'ES256')
})

t.test('an openssl-made P-384 request: ES384', async (t) => {
  const clientId = newId()
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-pkeyopt', 'ec_param_enc:named_curve', '-out', `${clientId}.key.pem`)
  openssl('req', '-new', '-key', `${clientId}.key.pem`, '-subj', `/CN=${clientId}`, '-sha384', '-out', `${clientId}.csr.pem`)
  await onboardAndVerify(t, clientId, readFileSync(join(dir, `${clientId}.csr.pem`), 'utf8'), readFileSync(join(dir, `${clientId}.key.pem`), 'utf8'), 'ES384')
})

t.test('an openssl-made P-256 request, and assertions the registered key does not fix', async (t) => {
  const clientId = newId()
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${clientId}.key.pem`)
  openssl('req', '-new', '-key', `${clientId}.key.pem`, '-subj', `/CN=${clientId}`, '-sha256', '-out', `${clientId}.csr.pem`)
  const keyPem = readFileSync(join(dir, `${clientId}.key.pem`), 'utf8')
  await onboardAndVerify(t, clientId, readFileSync(join(dir, `${clientId}.csr.pem`), 'utf8'), keyPem, 'ES256')

  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const refused = async (what: string, assertion: string, code: string) => {
    const res = await tokenWith(assertion)
    t.equal(res.statusCode, 401, what)
    t.equal(res.json().code, code, what)
  }
  await refused('ES256 by another P-256 key', signJwt(claims(clientId), other, 'ES256'), 'AUTH_ASSERTION_BAD_SIGNATURE')
  // Header ES384 over a P-256 signature: the key fixes ES256, whatever the header says.
  const es256 = signJwt(claims(clientId), keyPem, 'ES256').split('.')
  const header = Buffer.from(JSON.stringify({ alg: 'ES384', typ: 'JWT' })).toString('base64url')
  const input = `${header}.${es256[1]}`
  const sig = sign('sha384', Buffer.from(input), { key: createPrivateKey(keyPem), dsaEncoding: 'ieee-p1363' }).toString('base64url')
  await refused('ES384 claimed by a P-256 client', `${input}.${sig}`, 'AUTH_ASSERTION_BAD_SIGNATURE')
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  await refused('RS256 from an EC client', signJwt(claims(clientId), rsa, 'RS256'), 'AUTH_ASSERTION_BAD_SIGNATURE')
  await refused('alg none', `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${es256[1]}.`, 'AUTH_ASSERTION_MALFORMED')
})

t.test('hostile EC requests get stable problem codes, and nothing is registered', async (t) => {
  const id = newId()
  const good = await createCertificateRequest(id, 'P-256')
  // The request's key swapped for another P-256 key, the signature kept: it no longer verifies.
  const swapped = (() => {
    const csr = AsnConvert.parse(pemDer(good.csrPem), CertificationRequest)
    const otherSpki = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' })
    csr.certificationRequestInfo.subjectPKInfo = AsnConvert.parse(otherSpki, SubjectPublicKeyInfo)
    csr.certificationRequestInfoRaw = undefined
    return toPem(Buffer.from(AsnConvert.serialize(csr)))
  })()
  const made = (name: string, keyArgs: string[], reqArgs: string[] = ['-sha256']) => {
    openssl(...keyArgs, '-out', `${name}.key.pem`)
    openssl('req', '-new', '-key', `${name}.key.pem`, '-subj', `/CN=${id}`, ...reqArgs, '-out', `${name}.csr.pem`)
    return readFileSync(join(dir, `${name}.csr.pem`), 'utf8')
  }
  const cases: [string, string, string][] = [
    ['EC key swapped under the signature', swapped, 'ONBOARD_CSR_SIGNATURE_INVALID'],
    ['secp256k1', made('k1', ['ecparam', '-name', 'secp256k1', '-genkey', '-noout']), 'ONBOARD_CSR_CURVE_UNSUPPORTED'],
    ['brainpoolP256r1', made('bp', ['ecparam', '-name', 'brainpoolP256r1', '-genkey', '-noout']), 'ONBOARD_CSR_CURVE_UNSUPPORTED'],
    ['P-256 with explicit parameters', made('explicit', ['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout']), 'ONBOARD_CSR_CURVE_UNSUPPORTED'],
    ['Ed25519', made('ed', ['genpkey', '-algorithm', 'ed25519'], []), 'ONBOARD_CSR_KEY_UNSUPPORTED'],
    ['ECDSA with SHA-1', made('sha1', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout'], ['-sha1']), 'ONBOARD_CSR_SIGNATURE_INVALID'],
    ['RSA 1024', made('rsa1024', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024']), 'ONBOARD_CSR_KEY_WEAK'],
    ['a certificate, not a request', readFileSync(h.config.pki.caFile, 'utf8'), 'ONBOARD_CSR_MALFORMED'],
    ['truncated DER', toPem(pemDer(good.csrPem).subarray(0, 60)), 'ONBOARD_CSR_MALFORMED'],
  ]
  for (const [what, csr, code] of cases) {
    const res = await register(id, csr)
    t.equal(res.statusCode, 400, `${what}: ${res.body.slice(0, 200)}`)
    t.equal(res.json().code, code, what)
    t.match(res.headers['content-type'], /application\/problem\+json/, what)
  }
  t.equal((await h.query('SELECT 1 FROM systems WHERE client_id = $1', [id])).length, 0, 'nothing registered')
  t.equal((await register(id, good.csrPem)).statusCode, 201, 'the genuine request is accepted')
})

t.test('pki request: --ec usage errors', async (t) => {
  const err: string[] = []
  const io = { out: () => {}, err: (s: string) => void err.push(s) }
  t.equal(await pki(['request', '--ec', '--curve', 'P-521', '--client-id', 'x-y', '--out', dir], io), 2)
  t.match(err.join('\n'), /--curve: P-256 or P-384/)
  t.equal(await pki(['request', '--ec', '--bits', '4096', '--client-id', 'x-y', '--out', dir], io), 2)
  t.equal(await pki(['request', '--ec', '--algorithm', 'rsa', '--client-id', 'x-y', '--out', dir], io), 2)
})

function pemDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64')
}
function toPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`
}
