// This node's certificate, private key and trust anchor, checked to fit together at start:
// a key that does not match, or a certificate the CA did not issue, would otherwise show up
// much later as evidence nobody can verify or as failing TLS handshakes.
import { type KeyObject, X509Certificate, createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'

export interface NodeIdentityFiles {
  certFile: string
  keyFile: string
  caFile: string
}

export interface NodeIdentity {
  /** The node certificate, possibly followed by intermediates (as TLS `cert` takes it). */
  certPem: string
  keyPem: string
  /** Trust anchors: the province root CA (and any other CA certificates trusted). */
  caPem: string
  cert: X509Certificate
  privateKey: KeyObject
  publicKey: KeyObject
}

const MAX_CHAIN = 8

export function loadNodeIdentity(files: NodeIdentityFiles): NodeIdentity {
  const certPem = readPem(files.certFile, 'node certificate')
  const keyPem = readPem(files.keyFile, 'node private key')
  const caPem = readPem(files.caFile, 'CA certificate')
  const chain = parseCertificates(certPem, files.certFile)
  const anchors = parseCertificates(caPem, files.caFile)
  const cert = chain[0]

  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(keyPem)
  } catch (err) {
    throw new Error(`node private key ${files.keyFile} cannot be read: ${(err as Error).message}`)
  }
  if (!cert.checkPrivateKey(privateKey)) {
    throw new Error(`node private key ${files.keyFile} does not match the certificate ${files.certFile}`)
  }

  const now = Date.now()
  if (Date.parse(cert.validFrom) > now) {
    throw new Error(`node certificate ${files.certFile} is not valid before ${cert.validFrom}`)
  }
  if (Date.parse(cert.validTo) <= now) {
    throw new Error(`node certificate ${files.certFile} expired on ${cert.validTo}`)
  }
  if (!chainsToAnchor(chain, anchors)) {
    throw new Error(`node certificate ${files.certFile} was not issued by a CA in ${files.caFile}`)
  }

  return { certPem, keyPem, caPem, cert, privateKey, publicKey: cert.publicKey }
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const hint = code === 'ENOENT' ? ' (for a dev setup run `tongban pki init`)' : ''
    throw new Error(`${what} ${file} cannot be read: ${code ?? (err as Error).message}${hint}`)
  }
}

function parseCertificates(pem: string, file: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)
  if (!blocks) throw new Error(`${file} contains no PEM certificate`)
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block)
    } catch (err) {
      throw new Error(`${file}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`)
    }
  })
}

// Walk up through any intermediates that follow the node certificate in its file until a
// certificate is issued by one of the anchors.
function chainsToAnchor(chain: X509Certificate[], anchors: X509Certificate[]): boolean {
  const issuedBy = (child: X509Certificate, parent: X509Certificate) =>
    child.checkIssued(parent) && child.verify(parent.publicKey)
  let current = chain[0]
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (anchors.some((anchor) => issuedBy(current, anchor))) return true
    const next = chain.find((c) => c !== current && issuedBy(current, c))
    if (!next) return false
    current = next
  }
  return false
}
