// Signs a department's PKCS#10 request with the node's CA key: the department keeps its
// private key, the CA only ever sees the public half. The request and the certificate are
// read and written with the @peculiar ASN.1 structures (RFC 2986, RFC 5280); node:crypto
// checks the self-signature and signs. The request's key may be RSA (≥ 2048 bits) or EC on
// P-256 or P-384, whatever the department's HSM makes; the CA's own key signs as it is
// (RSA here), so a certificate may carry an EC key under an RSA signature.
import { existsSync, readFileSync } from 'node:fs'
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify, X509Certificate, type KeyObject } from 'node:crypto'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import { CertificationRequest } from '@peculiar/asn1-csr'
import {
  AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, AuthorityKeyIdentifier, BasicConstraints, Certificate,
  ExtendedKeyUsage, Extension, Extensions, KeyIdentifier, KeyUsage, KeyUsageFlags, Name, RelativeDistinguishedName,
  SubjectKeyIdentifier, SubjectPublicKeyInfo, TBSCertificate, Validity, Version,
  id_ce_authorityKeyIdentifier, id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage, id_ce_subjectKeyIdentifier, id_kp_clientAuth,
} from '@peculiar/asn1-x509'
import { Problem } from '../problems/problem.js'

/** Smallest RSA modulus accepted from a department (NIST SP 800-57: 2048 until 2030). */
export const MIN_RSA_BITS = 2048
/** EC curves accepted from a department (OpenSSL names), and the JWS algorithm each signs with. */
export const EC_CURVES: Record<string, { name: string; jws: 'ES256' | 'ES384' }> = {
  prime256v1: { name: 'P-256', jws: 'ES256' },
  secp384r1: { name: 'P-384', jws: 'ES384' },
}
const LEAF_YEARS = 2
const CLOCK_SKEW_MS = 5 * 60_000

const OID = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecPublicKey: '1.2.840.10045.2.1',
  commonName: '2.5.4.3',
  country: '2.5.4.6',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
}

// The self-signature algorithms a request may use, and the key type each needs. No SHA-1.
const CSR_SIGNATURES: Record<string, { hash: string; key: 'rsa' | 'ec' }> = {
  [OID.sha256WithRSA]: { hash: 'sha256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', key: 'rsa' },
  [OID.ecdsaWithSha256]: { hash: 'sha256', key: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', key: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', key: 'ec' },
}

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

/** A verified request's public key: the structure that goes into the certificate as it came. */
export interface CsrKey {
  spki: SubjectPublicKeyInfo
  key: KeyObject
}

const malformed = () => new Problem(400, 'ONBOARD_CSR_MALFORMED', 'csr is not a PEM PKCS#10 certificate request')
const weak = () => new Problem(400, 'ONBOARD_CSR_KEY_WEAK', `the request's RSA key must have at least ${MIN_RSA_BITS} bits`)
const badSignature = (why: string) => new Problem(400, 'ONBOARD_CSR_SIGNATURE_INVALID', `the self-signature of the certificate request does not verify (${why})`)

function pemBody(pem: string, label: RegExp): Buffer | null {
  const m = /-----BEGIN ([A-Z ]+)-----([A-Za-z0-9+/=\s]+)-----END \1-----/.exec(pem)
  if (!m || !label.test(m[1])) return null
  const der = Buffer.from(m[2].replace(/\s+/g, ''), 'base64')
  return der.length ? der : null
}

/** Parses a PEM CSR and checks its key, self-signature and subject CN; returns the public key. */
export function verifyCsr(pem: string, clientId: string): CsrKey {
  const der = pemBody(pem, /^(NEW )?CERTIFICATE REQUEST$/)
  if (!der) throw malformed()
  let csr: CertificationRequest
  let spkiDer: Buffer
  try {
    csr = AsnConvert.parse(der, CertificationRequest)
    spkiDer = Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo))
  } catch {
    throw malformed()
  }
  const info = csr.certificationRequestInfo
  if (!csr.certificationRequestInfoRaw) throw malformed()

  // The key's type first: a key we cannot certify is refused for that, whatever else.
  const keyAlg = info.subjectPKInfo.algorithm.algorithm
  if (keyAlg !== OID.rsaEncryption && keyAlg !== OID.ecPublicKey) {
    throw new Problem(400, 'ONBOARD_CSR_KEY_UNSUPPORTED', `the request's key (algorithm ${keyAlg}) is neither RSA nor EC; send an RSA (≥ ${MIN_RSA_BITS} bits) or EC P-256/P-384 key`)
  }
  // Named curves only (RFC 5480 §2.1.1): the parameters must be a curve OID (DER tag 06).
  const params = info.subjectPKInfo.algorithm.parameters
  if (keyAlg === OID.ecPublicKey && !(params && new Uint8Array(params)[0] === 0x06)) throw curveUnsupported('explicit parameters')
  let key: KeyObject
  try {
    key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' })
  } catch {
    // OpenSSL cannot read it: for EC, a curve it does not know or explicit parameters.
    if (keyAlg === OID.ecPublicKey) throw curveUnsupported('explicit or unknown')
    throw malformed()
  }
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'ec') {
    if (!EC_CURVES[details.namedCurve ?? '']) throw curveUnsupported(details.namedCurve ?? 'unknown')
  } else if (key.asymmetricKeyType !== 'rsa') {
    // The EC OID with a curve OpenSSL calls a key type of its own (SM2).
    throw curveUnsupported(key.asymmetricKeyType ?? 'unknown')
  }

  const suite = CSR_SIGNATURES[csr.signatureAlgorithm.algorithm]
  if (!suite) throw badSignature(`signature algorithm ${csr.signatureAlgorithm.algorithm} is not accepted; use SHA-256 or stronger with RSA or ECDSA`)
  if (suite.key !== key.asymmetricKeyType) throw badSignature(`an ${suite.key.toUpperCase()} signature algorithm with an ${key.asymmetricKeyType!.toUpperCase()} key`)
  let valid = false
  try {
    // ECDSA signatures in X.509 are DER (Ecdsa-Sig-Value), node's default encoding.
    valid = verify(suite.hash, Buffer.from(csr.certificationRequestInfoRaw), key, Buffer.from(csr.signature))
  } catch {
    valid = false
  }
  if (!valid) throw badSignature('not signed by the key it holds')
  // After the signature: a request that does not verify says so first, whatever its key.
  if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) < MIN_RSA_BITS) throw weak()

  const cns = info.subject.flatMap((rdn) => rdn.filter((a) => a.type === OID.commonName))
  const cn = cns.length === 1 ? cns[0].value.toString() : undefined
  if (cn !== clientId) throw new Problem(400, 'ONBOARD_CSR_CN_MISMATCH', 'the subject CN of the certificate request must equal clientId')
  return { spki: info.subjectPKInfo, key }
}

function curveUnsupported(curve: string): Problem {
  return new Problem(400, 'ONBOARD_CSR_CURVE_UNSUPPORTED', `the request's EC key is on curve ${curve}; only P-256 (prime256v1) and P-384 (secp384r1) are accepted`)
}

interface Ca {
  cert: Certificate
  key: KeyObject
  pem: string
}

/** The CA under `caCertFile` with its key beside it, or a 503 problem when the key is offline. */
export function loadSigningCa(caCertFile: string, caKeyFile: string): Ca {
  if (!existsSync(caKeyFile) || !existsSync(caCertFile)) {
    throw new Problem(503, 'ONBOARD_CA_OFFLINE', 'this node holds no CA key: certificates are issued offline by the provincial CA')
  }
  const pem = readFileSync(caCertFile, 'utf8')
  const der = new X509Certificate(pem).raw
  return { cert: AsnConvert.parse(der, Certificate), key: createPrivateKey(readFileSync(caKeyFile, 'utf8')), pem }
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
const keyIdOf = (spki: SubjectPublicKeyInfo) => createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest()

const ext = (extnID: string, value: unknown, critical = false) =>
  new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) })

const rdn = (type: string, value: AttributeValue) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })])

/** Issues the client certificate for a verified request's key. */
export function issueFromCsr(ca: Ca, csrKey: CsrKey, subject: CsrSubject): SignedCertificate {
  const caTbs = ca.cert.tbsCertificate
  const caKeyId = caTbs.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier)
  const authorityKeyId = caKeyId
    ? AsnConvert.parse(caKeyId.extnValue, SubjectKeyIdentifier)
    : new KeyIdentifier(keyIdOf(caTbs.subjectPublicKeyInfo))
  const serial = randomBytes(16)
  serial[0] &= 0x7f // positive, and
  serial[0] |= 0x40 // 16 bytes long (RFC 5280: at most 20 octets)
  const now = Date.now()
  const notAfter = new Date(now)
  notAfter.setFullYear(notAfter.getFullYear() + LEAF_YEARS)
  // The CA signs with the key it has: RSA (SHA-256, PKCS#1 v1.5) or ECDSA with SHA-256.
  const caIsRsa = ca.key.asymmetricKeyType === 'rsa'
  const signatureAlgorithm = caIsRsa
    ? new AlgorithmIdentifier({ algorithm: OID.sha256WithRSA, parameters: null })
    : new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 })
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serial.buffer.slice(serial.byteOffset, serial.byteOffset + serial.length),
    signature: signatureAlgorithm,
    // The CA's subject as it is encoded in its certificate: the issuer must be byte-equal.
    issuer: caTbs.subject,
    validity: new Validity({ notBefore: new Date(now - CLOCK_SKEW_MS), notAfter }),
    // UTF8String values so Chinese names survive; C stays PrintableString (RFC 5280).
    subject: new Name([
      rdn(OID.country, new AttributeValue({ printableString: 'CN' })),
      rdn(OID.organization, new AttributeValue({ utf8String: subject.department.name })),
      rdn(OID.organizationalUnit, new AttributeValue({ utf8String: subject.department.code })),
      rdn(OID.commonName, new AttributeValue({ utf8String: subject.clientId })),
    ]),
    subjectPublicKeyInfo: csrKey.spki,
    extensions: new Extensions([
      ext(id_ce_basicConstraints, new BasicConstraints({ cA: false }), true),
      ext(id_ce_keyUsage, new KeyUsage(KeyUsageFlags.digitalSignature), true),
      ext(id_ce_extKeyUsage, new ExtendedKeyUsage([id_kp_clientAuth])),
      ext(id_ce_subjectKeyIdentifier, new SubjectKeyIdentifier(keyIdOf(csrKey.spki))),
      ext(id_ce_authorityKeyIdentifier, new AuthorityKeyIdentifier({ keyIdentifier: authorityKeyId })),
    ]),
  })
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs))
  const signature = sign('sha256', tbsDer, ca.key)
  const der = Buffer.from(AsnConvert.serialize(new Certificate({ tbsCertificate: tbs, signatureAlgorithm, signatureValue: signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.length) })))
  const certificate = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`
  const x509 = new X509Certificate(certificate)
  return { certificate, caCertificate: ca.pem, notAfter: new Date(x509.validTo).toISOString(), serial: x509.serialNumber }
}
