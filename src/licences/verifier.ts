// The checks of POST /v1/licences/verify, as a pure function of the presented licence (or the
// library's record of it), the library's status answer and the seal trust anchors. Every
// check is reported; the first failing one, in the order below, names the verdict's code.
import type { ProblemCode } from '../problems/codes.js'
import {
  parseSm2Certificate,
  sm2SignatureFromDer,
  sm2VerifyHex,
  verifySm2CertificateSignature,
  type ParsedSm2Certificate,
} from '../pki/sm2-x509.js'
import { contentBytes, derToPem, sm3Hex, tbsBytes, type LicenceDocument, type LicenceSeal } from './document.js'

/** What the licence library answers about one licence number (its catalogue resource's items). */
export interface LibraryStatus {
  found: boolean
  status?: 'current' | 'revoked' | 'superseded'
  statusChangedOn?: string | null
  supersededBy?: string | null
  holderMatches?: boolean
  /** The seal of the library's record of this licence. */
  seal?: LicenceSeal
  /** Revocation status of the seal certificate asked about (or of the record's). */
  sealCertificate?: { serial: string; status: 'good' | 'revoked' | 'unknown'; revokedOn: string | null }
}

export const CHECKS = [
  'seal',
  'content',
  'sealCertificateChain',
  'sealCertificateValidity',
  'sealCertificateRevocation',
  'registered',
  'status',
  'validity',
  'holder',
] as const
export type CheckName = (typeof CHECKS)[number]

export interface CheckResult {
  check: CheckName
  result: 'pass' | 'fail' | 'skipped'
  code?: ProblemCode
  detail?: string
}

export interface Verdict {
  valid: boolean
  code?: ProblemCode
  licenceNumber: string
  typeCode: string
  checks: CheckResult[]
}

export interface SealTrustAnchor {
  certPem: string
  cert: ParsedSm2Certificate
}

/** Parses the seal CA file (one or more PEM certificates); non-SM2 or non-CA ones are refused. */
export function parseTrustAnchors(pems: string): SealTrustAnchor[] {
  const blocks = pems.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  return blocks.map((certPem) => {
    const cert = parseSm2Certificate(certPem)
    if (!cert.isCA) throw new Error(`seal trust anchor ${cert.subject.CN} is not a CA`)
    return { certPem: `${certPem}\n`, cert }
  })
}

const sameName = (a: object, b: object) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort())

// A date (YYYY-MM-DD) lies within a certificate's validity when any instant of that day does.
const dayWithin = (day: string, from: Date, to: Date) => {
  const start = Date.parse(`${day}T00:00:00+08:00`)
  return start + 86_400_000 > from.getTime() && start <= to.getTime()
}

/** Today's date in China Standard Time (licences are dated in local days). */
export const todayInChina = (now = new Date()): string => new Date(now.getTime() + 8 * 3_600_000).toISOString().slice(0, 10)

// Which anchor issued a seal certificate, remembered per certificate: an SM2 verification in
// JavaScript costs ~30 ms, and a handful of seal certificates seal every licence.
const chains = new WeakMap<SealTrustAnchor[], Map<string, SealTrustAnchor | null>>()
function issuingAnchor(certPem: string, cert: ParsedSm2Certificate, anchors: SealTrustAnchor[]): SealTrustAnchor | undefined {
  let known = chains.get(anchors)
  if (!known) chains.set(anchors, (known = new Map()))
  let found = known.get(certPem)
  if (found === undefined) {
    found = anchors.find((a) => sameName(a.cert.subject, cert.issuer) && verifySm2CertificateSignature(certPem, a.cert.publicKeyHex)) ?? null
    if (known.size >= 1024) known.clear() // bounded: presented certificates may be anyone's
    known.set(certPem, found)
  }
  return found ?? undefined
}

export function verifyLicence(o: {
  /** The presented document; absent: verify the library's record (by number). */
  document?: LicenceDocument
  licenceNumber: string
  holderId: string
  holderName?: string
  library: LibraryStatus
  anchors: SealTrustAnchor[]
  today: string
}): Verdict {
  const results = new Map<CheckName, CheckResult>()
  const set = (check: CheckName, ok: boolean | null, code: ProblemCode, detail?: string) =>
    results.set(check, ok === null ? { check, result: 'skipped', ...(detail ? { detail } : {}) } : ok ? { check, result: 'pass' } : { check, result: 'fail', code, ...(detail ? { detail } : {}) })
  const doc = o.document
  const seal = doc?.seal ?? o.library.seal

  // seal: the signature over the TBS under the seal certificate's key.
  let cert: ParsedSm2Certificate | undefined
  let certPem: string | undefined
  let sealOk = false
  if (!seal) {
    set('seal', false, 'LICENCE_SEAL_INVALID', 'no seal')
  } else {
    try {
      certPem = derToPem(Buffer.from(seal.certificate, 'base64'))
      cert = parseSm2Certificate(certPem)
    } catch {
      cert = undefined
    }
    const rs = sm2SignatureFromDer(Buffer.from(seal.signature, 'base64'))
    sealOk = !!cert && !!rs && seal.signatureAlg === 'SM2-with-SM3' && sm2VerifyHex(tbsBytes(seal.tbs), rs, cert.publicKeyHex)
    set('seal', sealOk, 'LICENCE_SEAL_INVALID', cert ? undefined : 'the seal certificate is not an SM2 certificate')
  }

  // content: the document is the one sealed (its digest and the fields the TBS names).
  if (!doc) set('content', null, 'LICENCE_CONTENT_ALTERED', 'verified by number: the library holds the content')
  else if (!sealOk) set('content', null, 'LICENCE_CONTENT_ALTERED', 'the seal does not verify')
  else {
    const t = seal!.tbs
    const same = t.dataHash === sm3Hex(contentBytes(doc as unknown as Record<string, unknown>)) &&
      t.licenceNumber === doc.number && t.typeCode === doc.typeCode && t.issuedOn === doc.issuedOn && t.validUntil === doc.validUntil
    set('content', same, 'LICENCE_CONTENT_ALTERED')
  }

  // The seal certificate: chain to a trusted seal CA, validity on the issue date, revocation.
  const issuedOn = doc?.issuedOn ?? seal?.tbs.issuedOn
  const anchor = cert && certPem ? issuingAnchor(certPem, cert, o.anchors) : undefined
  if (!cert) set('sealCertificateChain', null, 'LICENCE_SEAL_UNTRUSTED', 'no readable seal certificate')
  else set('sealCertificateChain', !!anchor && !cert.isCA, 'LICENCE_SEAL_UNTRUSTED')
  if (!cert || !issuedOn) set('sealCertificateValidity', null, 'LICENCE_SEAL_CERT_EXPIRED')
  else {
    const ok = dayWithin(issuedOn, cert.notBefore, cert.notAfter) && (!anchor || dayWithin(issuedOn, anchor.cert.notBefore, anchor.cert.notAfter))
    set('sealCertificateValidity', ok, 'LICENCE_SEAL_CERT_EXPIRED', ok ? undefined : `not valid on the issue date ${issuedOn}`)
  }
  const revocation = o.library.sealCertificate
  if (!cert) set('sealCertificateRevocation', null, 'LICENCE_SEAL_CERT_REVOKED')
  else if (!revocation || revocation.serial !== cert.serialHex) set('sealCertificateRevocation', false, 'LICENCE_SEAL_CERT_REVOKED', 'the library gave no status for this seal certificate')
  else set('sealCertificateRevocation', revocation.status === 'good', 'LICENCE_SEAL_CERT_REVOKED', revocation.status === 'revoked' ? `revoked on ${revocation.revokedOn}` : revocation.status === 'unknown' ? 'unknown to the seal CA' : undefined)

  // registered: the library holds this licence (and, for a document, this very content).
  const lib = o.library
  if (!lib.found) set('registered', false, 'LICENCE_NOT_FOUND')
  else if (doc && lib.seal && lib.seal.tbs.dataHash !== seal?.tbs.dataHash) set('registered', false, 'LICENCE_CONTENT_ALTERED', "the document differs from the library's record")
  else set('registered', true, 'LICENCE_NOT_FOUND')

  // status at the library.
  if (!lib.found) set('status', null, 'LICENCE_REVOKED')
  else if (lib.status === 'revoked') set('status', false, 'LICENCE_REVOKED', lib.statusChangedOn ? `revoked on ${lib.statusChangedOn}` : undefined)
  else if (lib.status === 'superseded') set('status', false, 'LICENCE_SUPERSEDED', lib.supersededBy ? `superseded by ${lib.supersededBy}` : undefined)
  else set('status', lib.status === 'current', 'LICENCE_REVOKED')

  // validity: today within validFrom … validUntil (null: 长期).
  const validFrom = doc?.validFrom ?? seal?.tbs.issuedOn
  const validUntil = doc ? doc.validUntil : seal?.tbs.validUntil
  if (!validFrom || validUntil === undefined || (!doc && !sealOk)) set('validity', null, 'LICENCE_EXPIRED')
  else set('validity', validFrom <= o.today && (validUntil === null || o.today <= validUntil), 'LICENCE_EXPIRED', validUntil && o.today > validUntil ? `expired on ${validUntil}` : undefined)

  // holder: the applicant is the licence's holder (the document's, and the library's).
  const docHolder = !doc || (doc.holder.id === o.holderId && (o.holderName === undefined || doc.holder.name === o.holderName))
  if (!lib.found && !doc) set('holder', null, 'LICENCE_HOLDER_MISMATCH')
  else set('holder', docHolder && lib.holderMatches !== false && (doc !== undefined || lib.holderMatches === true), 'LICENCE_HOLDER_MISMATCH')

  const checks = CHECKS.map((c) => results.get(c)!)
  const failed = checks.find((c) => c.result === 'fail')
  return {
    valid: !failed,
    ...(failed ? { code: failed.code } : {}),
    licenceNumber: o.licenceNumber,
    typeCode: doc?.typeCode ?? seal?.tbs.typeCode ?? '',
    checks,
  }
}
