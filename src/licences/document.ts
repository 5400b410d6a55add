// The electronic licence (电子证照) as Tongban carries it (docs/licences.md): a JSON document
// with the metadata of GB/T 36902/36903 (type code, number, holder, issuing authority, issue
// date, validity) and the type's surface data (照面信息), sealed by the issuing authority.
//
// The electronic seal: the authority signs, SM2 with SM3 (GM/T 0003, default user id), the
// JCS bytes of a small "to be signed" structure that names the licence and holds the SM3 digest
// of the JCS bytes of the document without its seal — the shape of GB/T 38540's TBS_Sign
// (data hash, seal, time) in JSON rather than ASN.1. The seal carries the authority's seal
// certificate (SM2, chained to the seal CA). Signing the digest, not the document, lets the
// library answer the seal of a licence without its personal content.
import { sm3 } from '../pki/sm2.js'
import { jcs } from '../evidence/jcs.js'
import { sm2SignHex, sm2SignatureToDer } from '../pki/sm2-x509.js'

export const LICENCE_FORMAT = 'tongban-licence/1'
export const SEAL_ALG = 'SM2-with-SM3'

/** The three licence types of the simulated library (codes: docs/licences.md). */
export const LICENCE_TYPES = {
  YYZZ: '营业执照',
  JMSFZ: '居民身份证电子证照',
  BDCQZ: '不动产权证书',
} as const
export type LicenceTypeCode = keyof typeof LICENCE_TYPES

export interface LicenceHolder {
  name: string
  /** GB11643: 公民身份号码; GB32100: 统一社会信用代码. */
  idType: 'GB11643' | 'GB32100'
  id: string
}

export interface LicenceIssuer {
  name: string
  /** 统一社会信用代码 (GB 32100). */
  creditCode: string
  region: string
}

export interface SealTbs {
  version: 1
  /** 印章编码 of the authority's seal. */
  sealId: string
  licenceNumber: string
  typeCode: string
  issuedOn: string
  validUntil: string | null
  hashAlg: 'SM3'
  /** SM3 of JCS(document without `seal`), hex. */
  dataHash: string
  signedAt: string
}

export interface LicenceSeal {
  tbs: SealTbs
  signatureAlg: typeof SEAL_ALG
  /** DER SM2 signature (r, s), base64, over the UTF-8 JCS bytes of tbs. */
  signature: string
  /** The seal certificate, DER base64. */
  certificate: string
}

export interface LicenceDocument {
  format: typeof LICENCE_FORMAT
  typeCode: string
  typeName: string
  /** 证照编号. */
  number: string
  holder: LicenceHolder
  issuer: LicenceIssuer
  /** 颁证日期, YYYY-MM-DD. */
  issuedOn: string
  /** 有效期起始日期. */
  validFrom: string
  /** 有效期截止日期; null: 长期. */
  validUntil: string | null
  /** 照面信息, as the type defines. */
  surface: Record<string, string | number | boolean | null>
  seal: LicenceSeal
}

export type UnsealedLicence = Omit<LicenceDocument, 'seal'>

/** SM3 of bytes, hex. */
export const sm3Hex = (bytes: Uint8Array): string => sm3(bytes).toString('hex')

/** The bytes the seal's data hash covers: JCS of the document without its seal. */
export function contentBytes(doc: Record<string, unknown>): Buffer {
  const { seal: _seal, ...content } = doc
  return Buffer.from(jcs(content), 'utf8')
}

export const tbsBytes = (tbs: SealTbs): Buffer => Buffer.from(jcs(tbs), 'utf8')

export const pemToDer = (pem: string): Buffer => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64')
export const derToPem = (der: Buffer): string =>
  `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`

/** Seals a licence with the authority's seal key and certificate. */
export function sealLicence(doc: UnsealedLicence, seal: { sealId: string; privateKeyHex: string; certPem: string; signedAt?: string }): LicenceDocument {
  const tbs: SealTbs = {
    version: 1,
    sealId: seal.sealId,
    licenceNumber: doc.number,
    typeCode: doc.typeCode,
    issuedOn: doc.issuedOn,
    validUntil: doc.validUntil,
    hashAlg: 'SM3',
    dataHash: sm3Hex(contentBytes(doc as unknown as Record<string, unknown>)),
    signedAt: seal.signedAt ?? `${doc.issuedOn}T00:00:00Z`,
  }
  const signature = sm2SignatureToDer(sm2SignHex(tbsBytes(tbs), seal.privateKeyHex)).toString('base64')
  return { ...doc, seal: { tbs, signatureAlg: SEAL_ALG, signature, certificate: pemToDer(seal.certPem).toString('base64') } }
}
