// Signs a department's PKCS#10 request with the node's CA key: the department keeps its
// private key, the CA only ever sees the public half. node-forge parses the request; Node's
// crypto does the RSA signature (forge's pure-JavaScript signing is slow).
import { existsSync, readFileSync } from 'node:fs'
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto'
import forge from 'node-forge'
import { Problem } from '../problems/problem.js'

/** Smallest RSA modulus accepted from a department (NIST SP 800-57: 2048 until 2030). */
export const MIN_RSA_BITS = 2048
const LEAF_YEARS = 2
const CLOCK_SKEW_MS = 5 * 60_000

export interface SignedCertificate {
  certificate: string
  caCertificate: string
  notAfter: string
  serial: string
}

export interface CsrSubject {
  clientId: string
  department: { code: string; name: string }
}

interface ForgeTbs {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1
}

/** Parses a PEM CSR and checks its self-signature, subject CN and key; returns the public key. */
export function verifyCsr(pem: string, clientId: string): forge.pki.rsa.PublicKey {
  let csr: forge.pki.CertificateSigningRequest
  try {
    csr = forge.pki.certificationRequestFromPem(pem)
  } catch (e) {
    const message = (e as Error).message ?? ''
    // forge reads RSA keys only; an EC or Ed25519 key fails here with an OID message.
    if (/OID is not RSA|not RSA/i.test(message)) throw new Problem(400, 'ONBOARD_CSR_KEY_WEAK', 'the request must hold an RSA key of at least 2048 bits')
    throw new Problem(400, 'ONBOARD_CSR_MALFORMED', 'csr is not a PEM PKCS#10 certificate request')
  }
  let valid = false
  try {
    valid = csr.verify()
  } catch {
    valid = false
  }
  if (!valid) throw new Problem(400, 'ONBOARD_CSR_SIGNATURE_INVALID', 'the self-signature of the certificate request does not verify')
  const key = csr.publicKey as forge.pki.rsa.PublicKey | null
  if (!key?.n || key.n.bitLength() < MIN_RSA_BITS) {
    throw new Problem(400, 'ONBOARD_CSR_KEY_WEAK', `the request must hold an RSA key of at least ${MIN_RSA_BITS} bits`)
  }
  const cns = csr.subject.attributes.filter((a) => a.shortName === 'CN')
  const cn = cns.length === 1 ? forge.util.decodeUtf8(String(cns[0].value)) : undefined
  if (cn !== clientId) throw new Problem(400, 'ONBOARD_CSR_CN_MISMATCH', 'the subject CN of the certificate request must equal clientId')
  return key
}

interface Ca {
  cert: forge.pki.Certificate
  key: KeyObject
  pem: string
}

/** The CA under `caCertFile` with its key beside it, or a 503 problem when the key is offline. */
export function loadSigningCa(caCertFile: string, caKeyFile: string): Ca {
  if (!existsSync(caKeyFile) || !existsSync(caCertFile)) {
    throw new Problem(503, 'ONBOARD_CA_OFFLINE', 'this node holds no CA key: certificates are issued offline by the provincial CA')
  }
  const pem = readFileSync(caCertFile, 'utf8')
  return { cert: forge.pki.certificateFromPem(pem), key: createPrivateKey(readFileSync(caKeyFile, 'utf8')), pem }
}

/** Issues the client certificate for a verified request's key. */
export function issueFromCsr(ca: Ca, publicKey: forge.pki.rsa.PublicKey, subject: CsrSubject): SignedCertificate {
  const cert = forge.pki.createCertificate()
  const bytes = randomBytes(16)
  if (bytes[0] === 0) bytes[0] = 1
  cert.serialNumber = (bytes[0] & 0x80 ? '00' : '') + bytes.toString('hex')
  cert.publicKey = publicKey
  const now = Date.now()
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS)
  const notAfter = new Date(now)
  notAfter.setFullYear(notAfter.getFullYear() + LEAF_YEARS)
  cert.validity.notAfter = notAfter
  // UTF8String values so Chinese names survive; C stays PrintableString (RFC 5280).
  const utf8 = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class
  cert.setSubject([
    { shortName: 'C', value: 'CN' },
    { shortName: 'O', value: subject.department.name, valueTagClass: utf8 },
    { shortName: 'OU', value: subject.department.code, valueTagClass: utf8 },
    { shortName: 'CN', value: subject.clientId, valueTagClass: utf8 },
  ])
  // forge parses UTF8String values as raw UTF-8 bytes but encodes them again when writing:
  // decoded first, the issuer name stays byte-equal to the CA's subject.
  cert.setIssuer(ca.cert.subject.attributes.map((a) =>
    a.valueTagClass === (forge.asn1.Type.UTF8 as number) && typeof a.value === 'string' ? { ...a, value: forge.util.decodeUtf8(a.value) } : a))
  const caKeyId = ca.cert.generateSubjectKeyIdentifier().getBytes()
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caKeyId },
  ])
  cert.signatureOid = cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption
  cert.tbsCertificate = (forge.pki as unknown as ForgeTbs).getTBSCertificate(cert)
  const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary')
  cert.signature = sign('sha256', tbs, ca.key).toString('binary')
  const certificate = forge.pki.certificateToPem(cert)
  const x509 = new X509Certificate(certificate)
  return { certificate, caCertificate: ca.pem, notAfter: new Date(x509.validTo).toISOString(), serial: x509.serialNumber }
}
