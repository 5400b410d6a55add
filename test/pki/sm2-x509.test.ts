import t from 'tap'
import { spawnSync } from 'node:child_process'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AsnConvert } from '@peculiar/asn1-schema'
import { Certificate } from '@peculiar/asn1-x509'
import {
  OID_SM2_WITH_SM3,
  generateSm2KeyPair,
  issueSm2Certificate,
  parseSm2Certificate,
  sm2PrivateKeyPem,
  sm2PrivateKeyHexFromPem,
  sm2SignatureFromDer,
  sm2SignatureToDer,
  verifySm2CertificateSignature,
} from '../../src/pki/sm2-x509.js'
import { createSigner, verifySignature } from '../../src/pki/suites.js'

const notBefore = new Date('2026-01-01T00:00:00Z')
const notAfter = new Date('2036-01-01T00:00:00Z')

function rootCa() {
  const key = generateSm2KeyPair()
  const certPem = issueSm2Certificate({
    subject: { CN: '通办电子印章根 CA（测试）', O: '江苏省政务服务管理办公室', C: 'CN' },
    publicKeyHex: key.publicKeyHex,
    signerPrivateKeyHex: key.privateKeyHex,
    notBefore,
    notAfter,
    isCA: true,
    pathLen: 0,
  })
  return { key, certPem }
}

const der = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64')
const pem = (d: Buffer) => `-----BEGIN CERTIFICATE-----\n${d.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`

// OpenSSL 3 is an independent SM2 implementation: run it where it is installed.
const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' })
const hasOpenssl = openssl.status === 0 && /OpenSSL 3/.test(openssl.stdout)
const dir = mkdtempSync(join(tmpdir(), 'tongban-sm2x509-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const run = (args: string[]) => spawnSync('openssl', args, { encoding: 'utf8', cwd: dir })

t.test('a self-signed SM2 CA round trips', async (t) => {
  const { key, certPem } = rootCa()
  t.match(certPem, /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/)
  const p = parseSm2Certificate(certPem)
  t.same(p.subject, { CN: '通办电子印章根 CA（测试）', O: '江苏省政务服务管理办公室', C: 'CN' })
  t.same(p.issuer, p.subject, 'self-signed: issuer is the subject')
  t.equal(p.isCA, true)
  t.equal(p.publicKeyHex, key.publicKeyHex)
  t.equal(p.sigAlgOid, OID_SM2_WITH_SM3)
  t.equal(p.notBefore.toISOString(), notBefore.toISOString())
  t.equal(p.notAfter.toISOString(), notAfter.toISOString())
  t.match(p.serialHex, /^[0-9a-f]{1,40}$/)
  t.ok(verifySm2CertificateSignature(certPem, key.publicKeyHex), 'verifies under its own key')

  const x = new X509Certificate(certPem)
  t.match(x.subject, /CN=通办电子印章根 CA（测试）/, 'Node reads the subject')
  t.equal(new Date(x.validFrom).toISOString(), notBefore.toISOString(), 'Node reads notBefore')
  t.equal(new Date(x.validTo).toISOString(), notAfter.toISOString(), 'Node reads notAfter')
  t.equal(x.ca, true)
  t.equal(x.serialNumber.toLowerCase().replace(/^0+/, ''), p.serialHex.replace(/^0+/, ''))
})

t.test('OpenSSL reads and verifies what this module issues', { skip: !hasOpenssl && 'OpenSSL 3 not installed' }, async (t) => {
  const ca = rootCa()
  const leafKey = generateSm2KeyPair()
  const leaf = issueSm2Certificate({
    subject: { CN: 'node-320000', O: 'Tongban', serialNumber: '320000' },
    publicKeyHex: leafKey.publicKeyHex,
    issuer: { certPem: ca.certPem, privateKeyHex: ca.key.privateKeyHex },
    notBefore,
    notAfter,
    extKeyUsage: ['serverAuth', 'clientAuth'],
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  })
  writeFileSync(join(dir, 'ca.pem'), ca.certPem)
  writeFileSync(join(dir, 'leaf.pem'), leaf)
  writeFileSync(join(dir, 'leaf.key'), sm2PrivateKeyPem(leafKey.privateKeyHex, leafKey.publicKeyHex))
  const text = run(['x509', '-in', 'leaf.pem', '-noout', '-text'])
  t.equal(text.status, 0, text.stderr)
  t.match(text.stdout, /Signature Algorithm: (SM2-with-SM3|sm2sign-with-sm3)/)
  t.match(text.stdout, /ASN1 OID: SM2/)
  t.match(text.stdout, /DNS:localhost, IP Address:127\.0\.0\.1/)
  t.match(text.stdout, /TLS Web Server Authentication, TLS Web Client Authentication/)
  // OpenSSL 3.0's chain verification fails on SM2 certificates, even on those it issues itself
  // (`openssl verify -check_ss_sig`: "EVP lib"), so its signature check runs on the parts:
  // the TBS bytes and the DER signature, under the CA's public key, SM3 with the default id.
  const opensslVerifies = (certPem: string) => {
    const c = AsnConvert.parse(der(certPem), Certificate)
    writeFileSync(join(dir, 'tbs.der'), Buffer.from(c.tbsCertificateRaw!))
    writeFileSync(join(dir, 'sig.der'), Buffer.from(c.signatureValue))
    const r = run(['pkeyutl', '-verify', '-pubin', '-inkey', 'ca.pub', '-rawin', '-digest', 'sm3',
      '-pkeyopt', 'distid:1234567812345678', '-in', 'tbs.der', '-sigfile', 'sig.der'])
    return r.status === 0 && /Signature Verified Successfully/.test(r.stdout)
  }
  writeFileSync(join(dir, 'ca.pub'), String(new X509Certificate(ca.certPem).publicKey.export({ type: 'spki', format: 'pem' })))
  t.ok(opensslVerifies(leaf), 'OpenSSL verifies the leaf signature under the CA key')
  t.ok(opensslVerifies(ca.certPem), 'and the self-signed CA')
  const edited = der(leaf)
  edited[edited.indexOf(Buffer.from('node-320000')) + 5] ^= 0x01
  t.notOk(opensslVerifies(pem(edited)), 'OpenSSL refuses an edited TBS')
  const key = run(['pkey', '-in', 'leaf.key', '-noout', '-text'])
  t.equal(key.status, 0, key.stderr)
  t.match(key.stdout, /ASN1 OID: SM2/)
  t.match(key.stdout.replace(/[\s:]/g, ''), leafKey.privateKeyHex, 'OpenSSL reads the private scalar')

  // and the other way: a certificate OpenSSL made verifies here
  const made = run(['req', '-x509', '-new', '-key', 'leaf.key', '-sm3', '-subj', '/CN=made-by-openssl', '-days', '1', '-sigopt', 'distid:1234567812345678'])
  t.equal(made.status, 0, made.stderr)
  t.ok(verifySm2CertificateSignature(made.stdout, leafKey.publicKeyHex), 'an OpenSSL SM2 certificate verifies')
  t.equal(parseSm2Certificate(made.stdout).subject.CN, 'made-by-openssl')
})

t.test('a chain CA → leaf', async (t) => {
  const ca = rootCa()
  const leafKey = generateSm2KeyPair()
  const leaf = issueSm2Certificate({
    subject: { CN: '南京市市场监督管理局电子印章', O: '南京市市场监督管理局', OU: '证照', C: 'CN', serialNumber: '11320100MB1234567X' },
    publicKeyHex: leafKey.publicKeyHex,
    issuer: { certPem: ca.certPem, privateKeyHex: ca.key.privateKeyHex },
    serialHex: '0a1b2c',
    notBefore,
    notAfter: new Date('2030-01-01T00:00:00Z'),
    keyUsage: ['digitalSignature', 'nonRepudiation'],
  })
  const p = parseSm2Certificate(leaf)
  t.equal(p.serialHex, '0a1b2c')
  t.same(p.issuer, parseSm2Certificate(ca.certPem).subject, 'issuer is the CA subject')
  t.equal(p.subject.serialNumber, '11320100MB1234567X')
  t.equal(p.subject.OU, '证照')
  t.equal(p.isCA, false)
  t.equal(p.publicKeyHex, leafKey.publicKeyHex)
  t.ok(verifySm2CertificateSignature(leaf, ca.key.publicKeyHex), 'the CA key verifies the leaf')
  t.notOk(verifySm2CertificateSignature(leaf, leafKey.publicKeyHex), 'the leaf key does not')
  const x = new X509Certificate(leaf)
  t.ok(x.checkIssued(new X509Certificate(ca.certPem)), 'Node sees the CA as issuer (names and key ids)')
  t.equal(x.ca, false)

  // a high-bit serial stays positive
  const high = issueSm2Certificate({
    subject: { CN: 'x' },
    publicKeyHex: leafKey.publicKeyHex,
    issuer: { certPem: ca.certPem, privateKeyHex: ca.key.privateKeyHex },
    serialHex: 'ff01',
    notBefore,
    notAfter,
  })
  t.equal(parseSm2Certificate(high).serialHex, 'ff01')
  t.equal(new X509Certificate(high).serialNumber.toLowerCase().replace(/^0+/, ''), 'ff01')
})

t.test('a tampered TBS, a wrong issuer key or a bad signature fail', async (t) => {
  const ca = rootCa()
  const other = generateSm2KeyPair()
  const leafKey = generateSm2KeyPair()
  const leaf = issueSm2Certificate({
    subject: { CN: 'holder-aaaa' },
    publicKeyHex: leafKey.publicKeyHex,
    issuer: { certPem: ca.certPem, privateKeyHex: ca.key.privateKeyHex },
    notBefore,
    notAfter,
  })
  t.ok(verifySm2CertificateSignature(leaf, ca.key.publicKeyHex))
  t.notOk(verifySm2CertificateSignature(leaf, other.publicKeyHex), 'wrong issuer key')

  const bytes = der(leaf)
  const at = bytes.indexOf(Buffer.from('holder-aaaa'))
  t.ok(at > 0)
  const edited = Buffer.from(bytes)
  edited[at + 7] = 'b'.charCodeAt(0) // holder-baaa: same length, still parses
  t.equal(parseSm2Certificate(pem(edited)).subject.CN, 'holder-baaa')
  t.notOk(verifySm2CertificateSignature(pem(edited), ca.key.publicKeyHex), 'edited TBS fails')

  const sigFlipped = Buffer.from(bytes)
  sigFlipped[sigFlipped.length - 3] ^= 0x01
  t.notOk(verifySm2CertificateSignature(pem(sigFlipped), ca.key.publicKeyHex), 'changed signature fails')

  // An issuer certificate with a key other than the one offered is refused at issue time.
  t.throws(
    () => issueSm2Certificate({ subject: { CN: 'x' }, publicKeyHex: leafKey.publicKeyHex, issuer: { certPem: ca.certPem, privateKeyHex: other.privateKeyHex }, notBefore, notAfter }),
    /issuer key does not match/,
  )
  t.throws(
    () => issueSm2Certificate({ subject: { CN: 'x' }, publicKeyHex: leafKey.publicKeyHex, signerPrivateKeyHex: other.privateKeyHex, notBefore, notAfter, isCA: true }),
    /signer key does not match/,
  )
  t.throws(() => issueSm2Certificate({ subject: { CN: 'x' }, publicKeyHex: leafKey.publicKeyHex, notBefore, notAfter }), /signerPrivateKeyHex/)
  t.throws(
    () => issueSm2Certificate({ subject: { CN: 'x' }, publicKeyHex: leafKey.publicKeyHex, signerPrivateKeyHex: leafKey.privateKeyHex, notBefore: notAfter, notAfter: notBefore }),
    /notAfter/,
  )
  t.throws(() => issueSm2Certificate({ subject: { CN: 'x' }, publicKeyHex: 'zz', signerPrivateKeyHex: leafKey.privateKeyHex, notBefore, notAfter }), /public key/)
})

t.test('signature encoding: canonical DER only', async (t) => {
  const rs = '00'.repeat(31) + '05' + 'aa'.repeat(8) + '00'.repeat(24)
  const d = sm2SignatureToDer(rs)
  t.equal(d.toString('hex'), '3026020105022100' + 'aa'.repeat(8) + '00'.repeat(24), 'minimal INTEGERs, 00 before a high bit')
  t.equal(sm2SignatureFromDer(d), rs)
  t.equal(sm2SignatureFromDer(Buffer.concat([d, Buffer.from([0])])), null, 'trailing byte')
  t.equal(sm2SignatureFromDer(Buffer.from('30070202000502010a', 'hex')), null, 'padded INTEGER')
  t.equal(sm2SignatureFromDer(Buffer.from('3006020100020101', 'hex')), null, 'r = 0')
  t.equal(sm2SignatureFromDer(Buffer.from('30060201ff020101', 'hex')), null, 'negative r')
  t.equal(sm2SignatureFromDer(Buffer.from('3003', 'hex')), null, 'truncated')
  t.equal(sm2SignatureFromDer(sm2SignatureToDer('ff'.repeat(64))), null, 's ≥ n')
})

t.test('hostile input never throws from verify', async (t) => {
  const ca = rootCa()
  for (const bad of ['', 'not a pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', ca.certPem.slice(0, 200)]) {
    t.equal(verifySm2CertificateSignature(bad, ca.key.publicKeyHex), false, JSON.stringify(bad.slice(0, 30)))
    t.throws(() => parseSm2Certificate(bad))
  }
  t.equal(verifySm2CertificateSignature(ca.certPem, 'zz'), false, 'malformed public key')
  t.equal(verifySm2CertificateSignature(ca.certPem, '04' + '00'.repeat(64)), false, 'point not on the curve')
})

t.test('an RSA certificate is not an SM2 one', async (t) => {
  const rsa = readFileSync(join(process.cwd(), 'certs/ca.crt.pem'), 'utf8') // the dev PKI's RSA root
  t.throws(() => parseSm2Certificate(rsa), /not an SM2 public key/)
  t.equal(verifySm2CertificateSignature(rsa, rootCa().key.publicKeyHex), false)
})

t.test('the SEC1 key is read by Node and by src/pki/suites.ts', async (t) => {
  const ca = rootCa()
  const keyPem = sm2PrivateKeyPem(ca.key.privateKeyHex)
  t.match(keyPem, /^-----BEGIN EC PRIVATE KEY-----\n/)
  t.equal(sm2PrivateKeyPem(ca.key.privateKeyHex, ca.key.publicKeyHex), keyPem, 'same with the public key given')
  t.doesNotThrow(() => createPrivateKey(keyPem), 'Node parses it')
  const data = Buffer.from('checkpoint {"seq":1}')
  const sig = createSigner('SM2-SM3', keyPem).sign(data)
  t.ok(verifySignature('SM2-SM3', ca.certPem, data, sig), 'a suites.ts signature with this key verifies with this certificate')
  t.throws(() => sm2PrivateKeyPem(ca.key.privateKeyHex, generateSm2KeyPair().publicKeyHex), /does not match/)
  t.throws(() => sm2PrivateKeyPem('00'.repeat(32)), /private key/)
})

t.test('a SEC1 key reads back', async (t) => {
  const k = generateSm2KeyPair()
  t.equal(sm2PrivateKeyHexFromPem(sm2PrivateKeyPem(k.privateKeyHex)), k.privateKeyHex)
  t.throws(() => sm2PrivateKeyHexFromPem('-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n'))
})
