// X.509 certificates on the SM2 curve, signed SM2-with-SM3 (GM/T 0015, GB/T 20518): the seal CA
// of electronic licences and SM2 node/client certificates. Structures come from
// @peculiar/asn1-x509; signatures from ./sm2.ts (sm-crypto-v2, GM/T 0003 with the default user
// id 1234567812345678), DER-encoded as ECDSA-Sig-Value in signatureValue, as OpenSSL writes
// them. Node's OpenSSL reads these certificates (X509Certificate) but cannot sign or verify
// SM2-with-SM3 the standard way (nodejs/node#53761), hence sm-crypto-v2.
import { createHash, randomBytes } from 'node:crypto'
import { SM2_N as N, sm2KeyPair, sm2PrivateHex, sm2PublicKeyOf, sm2Sign, sm2Verify } from './sm2.js'
import {
  AsnConvert,
  AsnIntegerArrayBufferConverter,
  AsnProp,
  AsnPropTypes,
  BitString,
  OctetString,
} from '@peculiar/asn1-schema'
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
} from '@peculiar/asn1-x509'

export const OID_SM2_CURVE = '1.2.156.10197.1.301'
export const OID_SM2_WITH_SM3 = '1.2.156.10197.1.501'
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1'

export interface Sm2KeyPair {
  privateKeyHex: string
  publicKeyHex: string // 04‖x‖y
}

export interface Sm2Name {
  CN: string
  O?: string
  OU?: string
  C?: string
  serialNumber?: string
}

export type Sm2KeyUsage = 'digitalSignature' | 'nonRepudiation' | 'keyCertSign' | 'cRLSign' | 'keyEncipherment'

export interface IssueSm2Certificate {
  subject: Sm2Name
  publicKeyHex: string
  /** Absent: self-signed (a CA) with signerPrivateKeyHex. */
  issuer?: { certPem: string; privateKeyHex: string }
  signerPrivateKeyHex?: string
  serialHex?: string
  notBefore: Date
  notAfter: Date
  isCA?: boolean
  pathLen?: number
  keyUsage?: Sm2KeyUsage[]
  extKeyUsage?: ('serverAuth' | 'clientAuth')[]
  dnsNames?: string[]
  ipAddresses?: string[]
}

export interface ParsedSm2Certificate {
  subject: Sm2Name
  issuer: Sm2Name
  serialHex: string
  notBefore: Date
  notAfter: Date
  isCA: boolean
  publicKeyHex: string
  sigAlgOid: string
}

// --- SM2 (./sm2.ts)

const HEX_PUBLIC = /^04[0-9a-f]{128}$/

const privateHex = sm2PrivateHex
function publicHex(k: string): string {
  const h = k.trim().toLowerCase()
  if (!HEX_PUBLIC.test(h)) throw new Error('sm2: public key must be 04‖x‖y (130 hex digits)')
  return h
}

export function generateSm2KeyPair(): Sm2KeyPair {
  const { privateKey, publicKey } = sm2KeyPair()
  return { privateKeyHex: privateKey, publicKeyHex: publicKey }
}

// sm2PublicKeyOf: the public key 04‖x‖y of a private scalar. sm2SignHex: raw r‖s as 128 hex
// digits. sm2VerifyHex: true only for a valid raw r‖s signature, any malformed input false.
export { sm2PublicKeyOf, sm2Sign as sm2SignHex, sm2Verify as sm2VerifyHex }

// --- ASN.1 helpers. asn1-schema's decorators are legacy (experimental) ones; applied by hand so
// this file does not depend on the compiler's decorator mode.

/** ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (also the SM2 signature, GM/T 0009). */
class SigValue {
  r = new ArrayBuffer(0)
  s = new ArrayBuffer(0)
}
AsnProp({ type: AsnPropTypes.Integer, converter: AsnIntegerArrayBufferConverter })(SigValue.prototype, 'r')
AsnProp({ type: AsnPropTypes.Integer, converter: AsnIntegerArrayBufferConverter })(SigValue.prototype, 's')

/** SEC1 ECPrivateKey (RFC 5915) with the named curve and the public key. */
class EcPrivateKey {
  version = 1
  privateKey = new OctetString()
  parameters?: string
  publicKey?: BitString
}
AsnProp({ type: AsnPropTypes.Integer })(EcPrivateKey.prototype, 'version')
AsnProp({ type: OctetString })(EcPrivateKey.prototype, 'privateKey')
AsnProp({ type: AsnPropTypes.ObjectIdentifier, context: 0, optional: true })(EcPrivateKey.prototype, 'parameters')
AsnProp({ type: BitString, context: 1, optional: true })(EcPrivateKey.prototype, 'publicKey')

const hex = (b: ArrayBuffer | Uint8Array) => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex')
const ab = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer

/** Raw r‖s (128 hex digits) as DER, minimal positive INTEGERs. */
export function sm2SignatureToDer(rsHex: string): Buffer {
  const int = (h: string) => {
    let b = Buffer.from(h, 'hex')
    let i = 0
    while (i < b.length - 1 && b[i] === 0) i++
    b = b.subarray(i)
    return ab(b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b)
  }
  const v = new SigValue()
  v.r = int(rsHex.slice(0, 64))
  v.s = int(rsHex.slice(64, 128))
  return Buffer.from(AsnConvert.serialize(v))
}

/** DER ECDSA-Sig-Value as raw r‖s, or null unless it is canonical DER with r, s in [1, n-1]. */
export function sm2SignatureFromDer(der: Uint8Array): string | null {
  try {
    const v = AsnConvert.parse(der, SigValue)
    const out = [v.r, v.s].map((x) => {
      const b = Buffer.from(x)
      if (b.length === 0 || b[0] & 0x80) throw new Error('negative')
      const n = BigInt(`0x${b.toString('hex')}`)
      if (n < 1n || n >= N) throw new Error('out of range')
      return n.toString(16).padStart(64, '0')
    })
    const rs = out.join('')
    // Only the canonical encoding: no trailing bytes, no padded integers.
    return sm2SignatureToDer(rs).equals(Buffer.from(der)) ? rs : null
  } catch {
    return null
  }
}

const NAME_OIDS: [keyof Sm2Name, string][] = [
  ['C', '2.5.4.6'],
  ['O', '2.5.4.10'],
  ['OU', '2.5.4.11'],
  ['CN', '2.5.4.3'],
  ['serialNumber', '2.5.4.5'],
]

function toName(n: Sm2Name): Name {
  if (!n.CN) throw new Error('sm2-x509: a name needs a CN')
  const rdns: RelativeDistinguishedName[] = []
  for (const [key, oid] of NAME_OIDS) {
    const value = n[key]
    if (value === undefined) continue
    // C and serialNumber are PrintableString (RFC 5280 upper bounds); the rest UTF8String for Chinese.
    const printable = key === 'C' || key === 'serialNumber'
    rdns.push(
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({
          type: oid,
          value: new AttributeValue(printable ? { printableString: value } : { utf8String: value }),
        }),
      ]),
    )
  }
  return new Name(rdns)
}

function fromName(name: Name): Sm2Name {
  const out: Partial<Sm2Name> = {}
  for (const rdn of name) {
    for (const atv of rdn) {
      const key = NAME_OIDS.find(([, oid]) => oid === atv.type)?.[0]
      if (key) out[key] = atv.value.toString()
    }
  }
  return { CN: '', ...out }
}

function pemBody(pem: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem)
  if (!m) throw new Error(`sm2-x509: not a PEM ${label}`)
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64')
}

function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

function readCertificate(pem: string): Certificate {
  return AsnConvert.parse(pemBody(pem, 'CERTIFICATE'), Certificate)
}

function sm2Spki(publicKeyHex: string): SubjectPublicKeyInfo {
  return new SubjectPublicKeyInfo({
    algorithm: new AlgorithmIdentifier({
      algorithm: OID_EC_PUBLIC_KEY,
      parameters: curveOid(),
    }),
    subjectPublicKey: ab(Buffer.from(publicHex(publicKeyHex), 'hex')),
  })
}

// The DER OBJECT IDENTIFIER 1.2.156.10197.1.301 as ECParameters (namedCurve).
const CURVE_DER = Buffer.from('06082a811ccf5501822d', 'hex')
function curveOid(): ArrayBuffer {
  return ab(CURVE_DER)
}

function spkiPublicHex(spki: SubjectPublicKeyInfo): string {
  const params = spki.algorithm.parameters
  if (spki.algorithm.algorithm !== OID_EC_PUBLIC_KEY || !params || !Buffer.from(params).equals(CURVE_DER)) {
    throw new Error('sm2-x509: not an SM2 public key')
  }
  return publicHex(hex(spki.subjectPublicKey))
}

// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.
const keyId = (publicKeyHex: string) => createHash('sha1').update(Buffer.from(publicKeyHex, 'hex')).digest()

function ext(extnID: string, value: object, critical = false): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) })
}

function keyUsageOf(names: Sm2KeyUsage[]): KeyUsage {
  let flags = 0
  for (const n of names) flags |= KeyUsageFlags[n]
  return new KeyUsage(flags)
}

function serialBytes(serialHex: string | undefined): ArrayBuffer {
  if (serialHex !== undefined) {
    if (!/^[0-9a-fA-F]{1,40}$/.test(serialHex)) throw new Error('sm2-x509: serialHex must be 1–40 hex digits')
    const b = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex')
    if (b.every((x) => x === 0)) throw new Error('sm2-x509: serial must be positive')
    return ab(b[0] & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b)
  }
  const b = randomBytes(16)
  b[0] &= 0x7f
  b[0] |= 0x01 // positive and never shortened
  return ab(b)
}

/** Issues an SM2-with-SM3 certificate; PEM "CERTIFICATE". */
export function issueSm2Certificate(o: IssueSm2Certificate): string {
  const subjectPublic = publicHex(o.publicKeyHex)
  let issuerName: Name
  let signer: string
  let issuerKeyId: Buffer
  if (o.issuer) {
    const ca = readCertificate(o.issuer.certPem)
    issuerName = ca.tbsCertificate.subject
    signer = privateHex(o.issuer.privateKeyHex)
    const caPublic = spkiPublicHex(ca.tbsCertificate.subjectPublicKeyInfo)
    if (sm2PublicKeyOf(signer) !== caPublic) throw new Error('sm2-x509: issuer key does not match the issuer certificate')
    const ski = ca.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier)
    issuerKeyId = ski ? Buffer.from(AsnConvert.parse(ski.extnValue, SubjectKeyIdentifier).buffer) : keyId(caPublic)
  } else {
    if (!o.signerPrivateKeyHex) throw new Error('sm2-x509: a self-signed certificate needs signerPrivateKeyHex')
    signer = privateHex(o.signerPrivateKeyHex)
    if (sm2PublicKeyOf(signer) !== subjectPublic) throw new Error('sm2-x509: signer key does not match the subject key')
    issuerName = toName(o.subject)
    issuerKeyId = keyId(subjectPublic)
  }
  if (!(o.notBefore instanceof Date) || !(o.notAfter instanceof Date) || !(o.notAfter > o.notBefore)) {
    throw new Error('sm2-x509: notAfter must follow notBefore')
  }

  const isCA = o.isCA ?? false
  const extensions = [
    ext(id_ce_basicConstraints, new BasicConstraints({ cA: isCA, pathLenConstraint: isCA ? o.pathLen : undefined }), true),
    ext(id_ce_keyUsage, keyUsageOf(o.keyUsage ?? (isCA ? ['keyCertSign', 'cRLSign'] : ['digitalSignature'])), true),
    ext(id_ce_subjectKeyIdentifier, new SubjectKeyIdentifier(ab(keyId(subjectPublic)))),
    ext(id_ce_authorityKeyIdentifier, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(ab(issuerKeyId)) })),
  ]
  if (o.extKeyUsage?.length) {
    const oids = { serverAuth: id_kp_serverAuth, clientAuth: id_kp_clientAuth }
    extensions.push(ext(id_ce_extKeyUsage, new ExtendedKeyUsage(o.extKeyUsage.map((u) => oids[u]))))
  }
  const names = [
    ...(o.dnsNames ?? []).map((dNSName) => new GeneralName({ dNSName })),
    ...(o.ipAddresses ?? []).map((iPAddress) => new GeneralName({ iPAddress })),
  ]
  if (names.length) extensions.push(ext(id_ce_subjectAltName, new SubjectAlternativeName(names)))

  const sigAlg = new AlgorithmIdentifier({ algorithm: OID_SM2_WITH_SM3 }) // parameters absent, as OpenSSL writes
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialBytes(o.serialHex),
    signature: sigAlg,
    issuer: issuerName,
    validity: new Validity({ notBefore: o.notBefore, notAfter: o.notAfter }),
    subject: toName(o.subject),
    subjectPublicKeyInfo: sm2Spki(subjectPublic),
    extensions: new Extensions(extensions),
  })
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs))
  const signature = sm2SignatureToDer(sm2Sign(tbsDer, signer))
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: OID_SM2_WITH_SM3 }),
    signatureValue: ab(signature),
  })
  return toPem(new Uint8Array(AsnConvert.serialize(cert)), 'CERTIFICATE')
}

/** Reads an SM2 certificate (throws if it is not one: the key must be on the SM2 curve). */
export function parseSm2Certificate(pem: string): ParsedSm2Certificate {
  const cert = readCertificate(pem)
  const tbs = cert.tbsCertificate
  const bc = tbs.extensions?.find((e) => e.extnID === id_ce_basicConstraints)
  return {
    subject: fromName(tbs.subject),
    issuer: fromName(tbs.issuer),
    serialHex: hex(tbs.serialNumber).replace(/^(00)+(?=.)/, ''),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    isCA: bc ? AsnConvert.parse(bc.extnValue, BasicConstraints).cA : false,
    publicKeyHex: spkiPublicHex(tbs.subjectPublicKeyInfo),
    sigAlgOid: cert.signatureAlgorithm.algorithm,
  }
}

/**
 * True only when the certificate is SM2-with-SM3 (outer and TBS algorithm alike) and its
 * signature over the TBS bytes, as they were received, verifies under the issuer's public key.
 */
export function verifySm2CertificateSignature(certPem: string, issuerPublicKeyHex: string): boolean {
  try {
    const cert = readCertificate(certPem)
    if (cert.signatureAlgorithm.algorithm !== OID_SM2_WITH_SM3 || cert.signatureAlgorithm.parameters) return false
    if (cert.tbsCertificate.signature.algorithm !== OID_SM2_WITH_SM3) return false
    const tbsRaw = cert.tbsCertificateRaw
    if (!tbsRaw) return false
    const rs = sm2SignatureFromDer(new Uint8Array(cert.signatureValue))
    if (!rs) return false
    return sm2Verify(new Uint8Array(tbsRaw), rs, issuerPublicKeyHex)
  } catch {
    return false
  }
}

/** SEC1 "EC PRIVATE KEY" with the SM2 curve OID (readable by Node, OpenSSL and src/pki/suites.ts). */
export function sm2PrivateKeyPem(privateKeyHex: string, publicKeyHex?: string): string {
  const d = privateHex(privateKeyHex)
  const pub = publicKeyHex ? publicHex(publicKeyHex) : sm2PublicKeyOf(d)
  if (sm2PublicKeyOf(d) !== pub) throw new Error('sm2-x509: public key does not match the private key')
  const key = new EcPrivateKey()
  key.privateKey = new OctetString(ab(Buffer.from(d, 'hex')))
  key.parameters = OID_SM2_CURVE
  key.publicKey = new BitString(ab(Buffer.from(pub, 'hex')))
  return toPem(new Uint8Array(AsnConvert.serialize(key)), 'EC PRIVATE KEY')
}

/** The private scalar (64 hex digits) of a SEC1 "EC PRIVATE KEY" on the SM2 curve, as sm2PrivateKeyPem writes it. */
export function sm2PrivateKeyHexFromPem(pem: string): string {
  const key = AsnConvert.parse(pemBody(pem, 'EC PRIVATE KEY'), EcPrivateKey)
  if (key.version !== 1 || key.parameters !== OID_SM2_CURVE) throw new Error('sm2-x509: not an SM2 EC PRIVATE KEY')
  return privateHex(hex(key.privateKey.buffer).padStart(64, '0'))
}
