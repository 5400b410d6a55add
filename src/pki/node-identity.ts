// This node's certificate, private key and trust anchor, checked to fit together at start:
// a key that does not match, or a certificate the CA did not issue, would otherwise show up
// much later as evidence nobody can verify or as failing TLS handshakes.
import { type KeyObject, X509Certificate, createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIssuedBy } from './issued.js'
import { sm2PrivateKeyHexOf, sm2PublicKeyHexOf, sm2PublicKeyOfPrivate, type SuiteName } from './suites.js'
import { certThumbprint } from './thumbprint.js'

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
  const issuedBy = isIssuedBy
  let current = chain[0]
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (anchors.some((anchor) => issuedBy(current, anchor))) return true
    const next = chain.find((c) => c !== current && issuedBy(current, c))
    if (!next) return false
    current = next
  }
  return false
}

/** What signs this node's checkpoints, statements and evidence (the node identity unless set apart). */
export interface SigningIdentity {
  alg: SuiteName
  certPem: string
  keyPem: string
  /** The CA that issued it (the SM2 CA of an SM2 node). */
  caPem: string
  cert: X509Certificate
  kid: string
}

/**
 * The signing identity of an SM2 node (pki.signCertFile …): its own certificate and key,
 * checked like the node's (the key fits, the CA issued it, valid now), and of the suite's
 * kind, so that a node configured SM2-SM3 with an RSA key fails at start, not per batch.
 */
export function loadSigningIdentity(alg: SuiteName, node: NodeIdentity, files: { certFile: string | null; keyFile: string | null; caFile: string | null }): SigningIdentity {
  const certFile = files.certFile
  const own = certFile !== null
  if (own && !files.keyFile) throw new Error('a signing certificate (TONGBAN_SIGN_CERT_FILE) needs its key (TONGBAN_SIGN_KEY_FILE)')
  const certPem = own ? readPem(certFile, 'signing certificate') : node.certPem
  const keyPem = own ? readPem(files.keyFile!, 'signing private key') : node.keyPem
  const caPem = files.caFile ? readPem(files.caFile, 'signing CA certificate') : node.caPem
  const where = own ? certFile : 'the node certificate'
  const cert = parseCertificates(certPem, where)[0]
  const sm2Public = sm2PublicKeyHexOf(certPem)
  if (alg === 'SM2-SM3') {
    if (!sm2Public) throw new Error(`TONGBAN_AUDIT_ALG=SM2-SM3 needs an SM2 signing certificate: ${where} is not on the SM2 curve (set TONGBAN_SIGN_CERT_FILE, docs/gm.md)`)
    let d: string
    try {
      d = sm2PrivateKeyHexOf(keyPem)
    } catch (err) {
      throw new Error(`signing private key ${files.keyFile ?? 'of the node'} is not an SM2 key: ${(err as Error).message}`)
    }
    if (sm2PublicKeyOfPrivate(d) !== sm2Public) throw new Error(`signing private key ${files.keyFile} does not match the certificate ${where}`)
  } else if (sm2Public) {
    throw new Error(`${where} is an SM2 certificate: it signs only with TONGBAN_AUDIT_ALG=SM2-SM3`)
  } else if (own && !cert.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new Error(`signing private key ${files.keyFile} does not match the certificate ${where}`)
  }
  if (own) {
    const now = Date.now()
    if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) <= now) throw new Error(`signing certificate ${where} is not valid now (${cert.validFrom} – ${cert.validTo})`)
    if (!chainsToAnchor(parseCertificates(certPem, where), parseCertificates(caPem, files.caFile ?? 'the CA file'))) {
      throw new Error(`signing certificate ${where} was not issued by a CA in ${files.caFile ?? 'the CA file'}`)
    }
  }
  return { alg, certPem, keyPem, caPem, cert, kid: certThumbprint(certPem) }
}
