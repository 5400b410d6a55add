// The SDK's own cryptography, held against independent implementations: PKCS#12 files made
// by node-forge (as the dev PKI makes them, AES-256 and the older 3DES) read by the SDK's
// node:crypto reader, a wrong password and an altered file refused by name; client
// assertions signed with RS256, PS256 and ES256 verified by fast-jwt (the gateway's
// verifier); JCS against the canonicalize package on the evidence vectors.
import t from 'tap'
import { generateKeyPairSync, X509Certificate } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import forge from 'node-forge'
import { createVerifier } from 'fast-jwt'
import canonicalize from 'canonicalize'
import { ROOT } from '../helpers/harness.js'
import { loadPkcs12, CredentialError, signClientAssertion, jcs } from '../../packages/client/src/index.js'

// A CA and a client certificate it issued, made with forge (not by the code under test).
function issue() {
  const keys = (bits: number) => forge.pki.rsa.generateKeyPair({ bits, e: 0x10001 })
  const caKeys = keys(2048)
  const ca = forge.pki.createCertificate()
  ca.publicKey = caKeys.publicKey
  ca.serialNumber = '01'
  ca.validity.notBefore = new Date(Date.now() - 60_000)
  ca.validity.notAfter = new Date(Date.now() + 86400_000)
  ca.setSubject([{ name: 'commonName', value: 'Test Root CA' }])
  ca.setIssuer(ca.subject.attributes)
  ca.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }])
  ca.sign(caKeys.privateKey, forge.md.sha256.create())
  const clientKeys = keys(2048)
  const cert = forge.pki.createCertificate()
  cert.publicKey = clientKeys.publicKey
  cert.serialNumber = '02'
  cert.validity.notBefore = ca.validity.notBefore
  cert.validity.notAfter = ca.validity.notAfter
  cert.setSubject([{ name: 'commonName', value: 'jn-test-system' }])
  cert.setIssuer(ca.subject.attributes)
  cert.sign(caKeys.privateKey, forge.md.sha256.create())
  return { ca, cert, key: clientKeys.privateKey }
}
const { ca, cert, key } = issue()
const p12 = (algorithm: 'aes256' | '3des', password: string) =>
  Buffer.from(forge.asn1.toDer(forge.pkcs12.toPkcs12Asn1(key, [cert, ca], password, { algorithm, friendlyName: 'jn-test-system', generateLocalKeyId: true })).getBytes(), 'binary')

t.test('PKCS#12 from forge (AES-256 and 3DES): key, certificate, CA and client id', async (t) => {
  for (const algorithm of ['aes256', '3des'] as const) {
    const c = loadPkcs12(p12(algorithm, 'pässwort-1'), 'pässwort-1')
    t.equal(c.clientId, 'jn-test-system', `${algorithm}: client id from the CN`)
    t.equal(new X509Certificate(c.certPem).serialNumber, '02', `${algorithm}: the certificate of the key`)
    t.equal(c.caPems.length, 1, `${algorithm}: the CA certificate`)
    t.equal(new X509Certificate(c.caPems[0]).subject, 'CN=Test Root CA')
    t.equal(forge.pki.privateKeyToPem(forge.pki.privateKeyFromPem(c.keyPem)), forge.pki.privateKeyToPem(key), `${algorithm}: the same private key`)
  }
})

t.test('PKCS#12: a wrong password and an altered file are refused, saying why', async (t) => {
  t.throws(() => loadPkcs12(p12('aes256', 'right'), 'wrong'), { name: 'CredentialError', message: /wrong password/ })
  const altered = p12('aes256', 'right')
  altered[altered.length - 40] ^= 0xff
  t.throws(() => loadPkcs12(altered, 'right'), CredentialError)
  t.throws(() => loadPkcs12(Buffer.from('-----BEGIN CERTIFICATE-----'), 'x'), { name: 'CredentialError', message: /PKCS#12/ })
})

t.test('client assertions: RS256, PS256, ES256 verify with fast-jwt', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const cases = [
    ['RS256', rsa],
    ['PS256', rsa],
    ['ES256', ec],
  ] as const
  for (const [alg, pair] of cases) {
    const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    const jwt = signClientAssertion({ clientId: 'jn-test-system', keyPem, audience: 'https://tongban.test/v1/oauth/token', algorithm: alg })
    const verify = createVerifier({ key: pair.publicKey.export({ type: 'spki', format: 'pem' }) as string, algorithms: [alg], complete: true })
    const { header, payload } = verify(jwt) as { header: { alg: string }; payload: Record<string, unknown> }
    t.equal(header.alg, alg)
    t.match(payload, { iss: 'jn-test-system', sub: 'jn-test-system', aud: 'https://tongban.test/v1/oauth/token', jti: /^[0-9a-f-]{36}$/ })
    t.ok((payload.exp as number) - (payload.iat as number) <= 300, `${alg}: short-lived`)
  }
  t.throws(() => signClientAssertion({ clientId: 'x', keyPem: ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, audience: 'a', algorithm: 'RS256' }), /cannot sign RS256/)
})

t.test('JCS: the same bytes as the canonicalize package, on every evidence vector', async (t) => {
  const serialize = canonicalize as unknown as (v: unknown) => string
  const dir = join(ROOT, 'test/vectors')
  const values: unknown[] = [{ b: [1, 1.5, -0, 1e21, 'é\u2028"\\'], a: { z: null, '\u00e9': true, A: false } }, [undefined, 3]]
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.json') ? [join(d, e.name)] : []))
  for (const f of walk(dir)) values.push(JSON.parse(readFileSync(f, 'utf8')))
  t.ok(values.length > 2, `${values.length} values`)
  for (const v of values) t.equal(jcs(v), serialize(v))
})
