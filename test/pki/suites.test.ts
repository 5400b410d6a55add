import t from 'tap'
import { constants, generateKeyPairSync, sign } from 'node:crypto'
import { createSigner, generateSm2KeyPair, verifySignature, type SuiteName } from '../../src/pki/suites.js'

const pem = (k: { export(o: { type: 'spki' | 'pkcs8'; format: 'pem' }): string | Buffer }, type: 'spki' | 'pkcs8') =>
  String(k.export({ type, format: 'pem' }))

function rsaPair() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { privateKey: pem(privateKey, 'pkcs8'), publicKey: pem(publicKey, 'spki') }
}

function ecPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { privateKey: pem(privateKey, 'pkcs8'), publicKey: pem(publicKey, 'spki') }
}

const data = Buffer.from('{"alg":"RS256","node":"320000","seq":42}')
const changed = Buffer.from('{"alg":"RS256","node":"320000","seq":43}')

// Made with OpenSSL 3.0 (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2`, a
// self-signed SM2-with-SM3 certificate, and `openssl pkeyutl -sign -rawin -digest sm3
// -pkeyopt distid:1234567812345678`), so SM2 is checked against an independent implementation.
const SM2_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQg0AJSl7fWbP0/2nKr
qfckrbC7VJnXnRtM5iUsht7rH2yhRANCAATeLJGb2O29XGAKST4+A29r27b8VT/r
IHbkU/zssdmQKAowIqPMCkviTS/4ucZO4nw1sPUbhDpzedW7EShp5H5s
-----END PRIVATE KEY-----
`
const SM2_CERT = `-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIUXeisQdeSkZECPjcNhBPulpRz3yswCgYIKoEcz1UBg3Uw
GzEZMBcGA1UEAwwQdG9uZ2Jhbi1zbTItdGVzdDAeFw0yNjExMjYxODQ5MDhaFw0z
NjExMjMxODQ5MDhaMBsxGTAXBgNVBAMMEHRvbmdiYW4tc20yLXRlc3QwWTATBgcq
hkjOPQIBBggqgRzPVQGCLQNCAATeLJGb2O29XGAKST4+A29r27b8VT/rIHbkU/zs
sdmQKAowIqPMCkviTS/4ucZO4nw1sPUbhDpzedW7EShp5H5so1MwUTAdBgNVHQ4E
FgQU+OuFp1IWmjHg19Pnt5I7WyXstoEwHwYDVR0jBBgwFoAU+OuFp1IWmjHg19Pn
t5I7WyXstoEwDwYDVR0TAQH/BAUwAwEB/zAKBggqgRzPVQGDdQNIADBFAiEAvUDU
Xm7rJ1YU6WB3a75/MzmZ2XMpJBJvNk/v+H/9fucCIBjXk6oP8woZnpWehcFtUBTt
O8OCSAAwJLZc0XO+O0ru
-----END CERTIFICATE-----
`
const SM2_PRIVATE_HEX = 'd0025297b7d66cfd3fda72aba9f724adb0bb5499d79d1b4ce6252c86deeb1f6c'
const SM2_PUBLIC_HEX =
  '04de2c919bd8edbd5c600a493e3e036f6bdbb6fc553feb2076e453fcecb1d99028' +
  '0a3022a3cc0a4be24d2ff8b9c64ee27c35b0f51b843a7379d5bb112869e47e6c'
const OPENSSL_DATA = Buffer.from('hello checkpoint {"a":1}')
const OPENSSL_SIG = Buffer.from(
  'fd5823c2715909f6d4512146852d9145ad5cc4d13b8338881e51bd47634b7c66' +
    '6427007c3ebb7c71a457ad375e3271ad913740a877059d3788dcb68410ef7ba3',
  'hex',
)

t.test('RS256 and PS256 round trips and rejections', async (t) => {
  const a = rsaPair()
  const b = rsaPair()
  for (const alg of ['RS256', 'PS256'] as const) {
    const signer = createSigner(alg, a.privateKey)
    t.equal(signer.alg, alg)
    const sig = signer.sign(data)
    t.equal(sig.length, 256, `${alg}: 2048-bit signature`)
    t.ok(verifySignature(alg, a.publicKey, data, sig), `${alg}: verifies`)
    t.notOk(verifySignature(alg, b.publicKey, data, sig), `${alg}: wrong key`)
    t.notOk(verifySignature(alg, a.publicKey, changed, sig), `${alg}: changed data`)
    const flipped = Buffer.from(sig)
    flipped[17] ^= 0x40
    t.notOk(verifySignature(alg, a.publicKey, data, flipped), `${alg}: changed signature`)
  }
  const rs = createSigner('RS256', a.privateKey).sign(data)
  const ps = createSigner('PS256', a.privateKey).sign(data)
  t.notOk(verifySignature('PS256', a.publicKey, data, rs), 'an RS256 signature is not a PS256 one')
  t.notOk(verifySignature('RS256', a.publicKey, data, ps), 'a PS256 signature is not an RS256 one')
  t.not(createSigner('PS256', a.privateKey).sign(data).toString('hex'), ps.toString('hex'), 'PSS is salted')
})

t.test('PS256 follows the JWS convention: salt length 32', async (t) => {
  const a = rsaPair()
  const key = { key: a.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING }
  t.ok(verifySignature('PS256', a.publicKey, data, sign('sha256', data, { ...key, saltLength: 32 })))
  const maxSalt = sign('sha256', data, { ...key, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN })
  t.notOk(verifySignature('PS256', a.publicKey, data, maxSalt), 'another salt length is refused')
})

t.test('RSA suites refuse other key types', async (t) => {
  const ec = ecPair()
  t.throws(() => createSigner('RS256', ec.privateKey), /not an RSA key/)
  t.throws(() => createSigner('PS256', ec.privateKey), /not an RSA key/)
  const ecdsa = sign('sha256', data, ec.privateKey)
  t.notOk(verifySignature('RS256', ec.publicKey, data, ecdsa), 'an ECDSA signature does not pass as RS256')
})

t.test('SM2-SM3 agrees with OpenSSL', async (t) => {
  t.ok(verifySignature('SM2-SM3', SM2_CERT, OPENSSL_DATA, OPENSSL_SIG), 'OpenSSL signature, certificate')
  t.ok(verifySignature('SM2-SM3', SM2_PUBLIC_HEX, OPENSSL_DATA, OPENSSL_SIG), 'OpenSSL signature, hex public key')
  t.ok(verifySignature('SM2-SM3', SM2_PUBLIC_HEX.slice(2), OPENSSL_DATA, OPENSSL_SIG), 'hex public key without 04')
  t.notOk(verifySignature('SM2-SM3', SM2_CERT, Buffer.from('hello checkpoint {"a":2}'), OPENSSL_SIG), 'changed data')
})

t.test('SM2-SM3 round trips and rejections', async (t) => {
  const signer = createSigner('SM2-SM3', SM2_KEY)
  t.equal(signer.alg, 'SM2-SM3')
  const sig = signer.sign(data)
  t.equal(sig.length, 64, 'raw r‖s')
  t.ok(verifySignature('SM2-SM3', SM2_CERT, data, sig), 'verifies with the certificate')
  t.ok(verifySignature('SM2-SM3', SM2_PUBLIC_HEX, data, sig), 'verifies with the hex public key')
  const again = signer.sign(data)
  t.not(again.toString('hex'), sig.toString('hex'), 'a fresh nonce each time')
  t.ok(verifySignature('SM2-SM3', SM2_CERT, data, again))
  t.notOk(verifySignature('SM2-SM3', SM2_CERT, changed, sig), 'changed data')
  const flipped = Buffer.from(sig)
  flipped[40] ^= 1
  t.notOk(verifySignature('SM2-SM3', SM2_CERT, data, flipped), 'changed signature')
  t.notOk(verifySignature('SM2-SM3', SM2_CERT, data, sig.subarray(0, 63)), 'short signature')

  const other = generateSm2KeyPair()
  t.match(other, { privateKey: /^[0-9a-f]{64}$/, publicKey: /^04[0-9a-f]{128}$/ })
  t.notOk(verifySignature('SM2-SM3', other.publicKey, data, sig), 'wrong key')
  const hexSigner = createSigner('SM2-SM3', other.privateKey)
  t.ok(verifySignature('SM2-SM3', other.publicKey, data, hexSigner.sign(data)), 'hex private key')
  t.ok(verifySignature('SM2-SM3', SM2_CERT, data, createSigner('SM2-SM3', SM2_PRIVATE_HEX).sign(data)), 'same key as hex')
})

t.test('SM2-SM3 refuses keys on other curves', async (t) => {
  const ec = ecPair()
  t.throws(() => createSigner('SM2-SM3', ec.privateKey), /not an SM2 private key/)
  t.throws(() => createSigner('SM2-SM3', rsaPair().privateKey), /not an SM2 private key/)
  t.notOk(verifySignature('SM2-SM3', ec.publicKey, OPENSSL_DATA, OPENSSL_SIG))
})

t.test('verifySignature never throws', async (t) => {
  const cases: [SuiteName, string, Buffer][] = [
    ['RS256', 'not a key', Buffer.alloc(256)],
    ['PS256', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', Buffer.alloc(0)],
    ['SM2-SM3', 'zz', Buffer.alloc(64)],
    ['SM2-SM3', SM2_PUBLIC_HEX.replace(/.$/, '0'), OPENSSL_SIG],
    ['SM2-SM3', SM2_CERT, Buffer.alloc(64)],
    ['HS256' as SuiteName, SM2_CERT, OPENSSL_SIG],
  ]
  for (const [alg, key, sig] of cases) t.equal(verifySignature(alg, key, data, sig), false, `${alg} ${key.slice(0, 12)}`)
  t.throws(() => createSigner('HS256' as SuiteName, SM2_KEY), /unsupported signature suite/)
})
