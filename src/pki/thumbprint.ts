// Certificate identifiers published by the node: the evidence `kid` (RFC 8705 x5t#S256
// style thumbprint) and the JWKS `x5c` entry.
import { createHash } from 'node:crypto'

/** DER bytes of the first PEM block with this label. */
export function pemToDer(pem: string, label = 'CERTIFICATE'): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem)
  if (!m) throw new Error(`pem: no ${label} block`)
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64')
}

/** base64url (no padding) SHA-256 of the certificate DER: the evidence `kid`. */
export function certThumbprint(certPem: string): string {
  return createHash('sha256').update(pemToDer(certPem)).digest('base64url')
}

/** Standard base64 DER, as JWKS `x5c` carries it (RFC 7517 §4.7). */
export function x5c(certPem: string): string {
  return pemToDer(certPem).toString('base64')
}
