// The SDK's evidence check: the same checks, in the same order and with the same reasons, as
// the gateway's verifyEvidence (its docs/audit.md), with what does not change between
// answers kept: the node certificate's parsed key and its chain to the pinned CA (checked
// once per certificate; validity dates on every answer), and checkpoint signatures already
// verified (every answer of one audit batch, and every line of a batch download from it,
// carries the same signed checkpoint). The gateway's test/sdk/sdk.test.ts holds it to the
// reference vectors. Checkpoint signatures: RS256, PS256, ES256, SM2-SM3 (sm2.ts); evidence
// v1 (SHA-256) and v2 (SM3).
import { X509Certificate, constants, createHash, verify as rsaVerify, type KeyObject } from 'node:crypto'
import { certThumbprint, decodeEvidence, digest, hashOfVersion, type Evidence } from './evidence.js'
import { sm2CertificateSignedBy, sm2PublicKeyOf, sm2Verify } from './sm2.js'
import { jcs } from './jcs.js'
import { leafHash, rootFromPath } from './merkle.js'

export type VerifyResult = { ok: true; evidence: Evidence } | { ok: false; reason: string; detail?: string }

interface KnownCert {
  pem: string
  key: KeyObject
  notBefore: number
  notAfter: number
  /** Per CA PEM: null when the certificate chains to it, else why not. */
  chain: Map<string, string | null>
  x509: X509Certificate
  /** Its SM2 public key (04‖x‖y hex), when it is an SM2 certificate. */
  sm2: string | null
}

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }
const SIGNATURE_CACHE = 1024
const SUITES = new Set(['RS256', 'PS256', 'ES256', 'SM2-SM3'])

export class EvidenceVerifier {
  private readonly certs = new Map<string, KnownCert>()
  private readonly signatures = new Map<string, true>()
  private readonly kids = new Map<string, string>()

  /** `cas`: trusted root CA PEMs; empty means the added certificates are trusted as they are. */
  constructor(private readonly cas: readonly string[]) {}

  /** Adds a node certificate (from /v1/node); returns its kid. */
  addCertificate(pem: string): string {
    const known = this.kids.get(pem)
    if (known) return known
    const kid = certThumbprint(pem)
    this.kids.set(pem, kid)
    if (!this.certs.has(kid)) {
      const x509 = new X509Certificate(pem)
      this.certs.set(kid, { pem, key: x509.publicKey, notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo), chain: new Map(), x509, sm2: sm2PublicKeyOf(x509) })
    }
    return kid
  }

  hasKid(kid: string): boolean {
    return this.certs.has(kid)
  }

  verify(header: string, body: Buffer | string, now = Date.now()): VerifyResult {
    let e: Evidence
    try {
      e = decodeEvidence(header)
    } catch (err) {
      return { ok: false, reason: 'malformed', detail: (err as Error).message }
    }
    const cp = e.checkpoint
    const h = hashOfVersion(e.v)
    if (digest(body, e.v) !== e.record.responseDigest) return { ok: false, reason: 'body-digest-mismatch' }
    if (e.index >= e.size) return { ok: false, reason: 'index-out-of-range' }
    if (e.size !== cp.size) return { ok: false, reason: 'size-mismatch' }
    const root = rootFromPath(leafHash(jcs(e.record), h), e.index, e.size, e.path.map((p) => Buffer.from(p, 'hex')), h)
    if (!root || root.toString('hex') !== cp.root) return { ok: false, reason: 'bad-inclusion-proof' }

    const cert = this.certs.get(cp.kid)
    if (!cert) return { ok: false, reason: 'unknown-kid' }
    if (!SUITES.has(cp.alg)) return { ok: false, reason: 'unsupported-alg' }
    const signed = Buffer.from(jcs(cp))
    const memo = `${cp.kid}|${e.sig}|${createHash('sha256').update(signed).digest('hex')}`
    if (!this.signatures.has(memo)) {
      if (!this.signatureOk(cp.alg, cert, signed, Buffer.from(e.sig, 'base64url'))) return { ok: false, reason: 'bad-signature' }
      if (this.signatures.size >= SIGNATURE_CACHE) this.signatures.delete(this.signatures.keys().next().value!)
      this.signatures.set(memo, true)
    }

    if (this.cas.length > 0) {
      let reason = 'untrusted-certificate'
      for (const ca of this.cas) {
        const r = this.chainProblem(cert, ca) ?? (now < cert.notBefore ? 'certificate-not-yet-valid' : now > cert.notAfter ? 'certificate-expired' : null)
        if (r === null) return { ok: true, evidence: e }
        reason = r
        if (r !== 'untrusted-certificate') break
      }
      return { ok: false, reason }
    }
    return { ok: true, evidence: e }
  }

  private signatureOk(alg: string, cert: KnownCert, data: Buffer, sig: Buffer): boolean {
    try {
      if (alg === 'SM2-SM3') return cert.sm2 !== null && sm2Verify(data, sig, cert.sm2)
      if (cert.sm2 !== null) return false
      const type = cert.key.asymmetricKeyType
      if (alg === 'RS256') return type === 'rsa' && rsaVerify('sha256', data, cert.key, sig)
      if (alg === 'PS256') return (type === 'rsa' || type === 'rsa-pss') && rsaVerify('sha256', data, { key: cert.key, ...PSS }, sig)
      return type === 'ec' && rsaVerify('sha256', data, { key: cert.key, dsaEncoding: 'ieee-p1363' }, sig)
    } catch {
      return false
    }
  }

  private chainProblem(cert: KnownCert, caPem: string): string | null {
    let r = cert.chain.get(caPem)
    if (r === undefined) {
      try {
        const ca = new X509Certificate(caPem)
        const caSm2 = sm2PublicKeyOf(ca)
        // An SM2 CA: GM/T 0003 with the default user id (OpenSSL's check still counts, as the gateway's).
        const signed = (caSm2 !== null && sm2CertificateSignedBy(cert.x509, caSm2)) || cert.x509.verify(ca.publicKey)
        r = ca.ca && cert.x509.checkIssued(ca) && signed ? null : 'untrusted-certificate'
      } catch {
        r = 'untrusted-certificate'
      }
      cert.chain.set(caPem, r)
    }
    return r
  }
}
