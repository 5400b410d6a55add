// Which certificate signed what: node certificates by kid, each checked once to chain to
// the trusted CA and to have been valid when it signed. Used wherever a checkpoint's
// signature is verified: the integrity check, offline bundles, a parent's check of its
// children's checkpoints.
import { X509Certificate } from 'node:crypto'
import { certThumbprint } from './thumbprint.js'
import { isIssuedBy } from './issued.js'

/** kid → PEM, checked against the trust anchor once each. */
export class CertificateSet {
  private readonly pems = new Map<string, string>()
  private readonly checked = new Map<string, { cert: X509Certificate; problem: string | null }>()
  private readonly anchors: X509Certificate[]
  private readonly intermediates: X509Certificate[]

  constructor(caPem: string | string[], intermediatesPem: string[] = []) {
    this.anchors = splitPem(caPem).map((p) => new X509Certificate(p))
    this.intermediates = intermediatesPem.flatMap(splitPem).map((p) => new X509Certificate(p))
  }

  add(pem: string): string {
    const first = splitPem(pem)[0]
    const kid = certThumbprint(first)
    this.pems.set(kid, first)
    return kid
  }

  has(kid: string): boolean {
    return this.pems.has(kid)
  }

  pem(kid: string): string | undefined {
    return this.pems.get(kid)
  }

  kids(): string[] {
    return [...this.pems.keys()]
  }

  /** null when the certificate chains to an anchor and was valid at `at`; else why not. */
  problem(kid: string, at: string): string | null {
    const pem = this.pems.get(kid)
    if (!pem) return `no certificate with kid ${kid}`
    let c = this.checked.get(kid)
    if (!c) {
      const cert = new X509Certificate(pem)
      c = { cert, problem: this.chains(cert) ? null : 'does not chain to the trusted CA' }
      this.checked.set(kid, c)
    }
    if (c.problem) return c.problem
    const t = Date.parse(at)
    if (t < Date.parse(c.cert.validFrom) || t > Date.parse(c.cert.validTo)) {
      return `not valid at ${at} (valid ${c.cert.validFrom} – ${c.cert.validTo})`
    }
    return null
  }

  private chains(cert: X509Certificate): boolean {
    const issuedBy = isIssuedBy
    let current = cert
    for (let depth = 0; depth < 8; depth++) {
      if (this.anchors.some((a) => a.ca && issuedBy(current, a))) return true
      const next = this.intermediates.find((i) => i.ca && i !== current && issuedBy(current, i))
      if (!next) return false
      current = next
    }
    return false
  }
}

export function splitPem(pem: string | string[]): string[] {
  const all = Array.isArray(pem) ? pem.join('\n') : pem
  return all.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
}

