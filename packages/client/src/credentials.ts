// A departmental system's credential: its private key, its certificate and the CA
// certificates that came with it, from a PKCS#12 file (as the province CA issues them) or
// from PEM files.
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readPkcs12 } from './pkcs12.js'

export interface Credential {
  /** The system's client id: the certificate subject's CN unless given. */
  clientId: string
  keyPem: string
  certPem: string
  /** CA certificates found with the credential (PKCS#12 chain, or given). */
  caPems: string[]
}

export type CredentialSource =
  | { p12: Buffer | string; password: string; clientId?: string }
  | { keyPem: string; certPem?: string; caPem?: string | string[]; clientId?: string }
  | { keyFile: string; certFile?: string; caFile?: string; clientId?: string }

export class CredentialError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CredentialError'
  }
}

const subjectCn = (certPem: string): string | undefined => /(?:^|\n)CN=([^\n]+)/.exec(new X509Certificate(certPem).subject)?.[1]

const samePublicKey = (keyPem: string, certPem: string): boolean => {
  const a = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' })
  const b = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' })
  return a.equals(b)
}

/** Reads a PKCS#12 (.p12 / .pfx): the key, the certificate that matches it, and the CA certificates with it. */
export function loadPkcs12(p12: Buffer | string, password: string): Omit<Credential, 'clientId'> & { clientId?: string } {
  const der = typeof p12 === 'string' ? readFileSync(p12) : p12
  let contents
  try {
    contents = readPkcs12(der, password)
  } catch (e) {
    throw new CredentialError(`${(e as Error).message.startsWith('PKCS#12') ? '' : 'PKCS#12: cannot read it (not a PKCS#12 file?): '}${(e as Error).message}`)
  }
  const keyPem = contents.key.export({ type: 'pkcs8', format: 'pem' }) as string
  const certs = contents.certificates.map((c) => c.toString())
  const certPem = certs.find((c) => samePublicKey(keyPem, c))
  if (!certPem) throw new CredentialError('PKCS#12: no certificate for its private key')
  return { keyPem, certPem, caPems: certs.filter((c) => c !== certPem && new X509Certificate(c).ca), clientId: subjectCn(certPem) }
}

export function loadCredential(src: CredentialSource): Credential {
  let c: Omit<Credential, 'clientId'> & { clientId?: string }
  if ('p12' in src) c = loadPkcs12(src.p12, src.password)
  else {
    const keyPem = 'keyPem' in src ? src.keyPem : readFileSync(src.keyFile, 'utf8')
    const certPem = 'keyPem' in src ? src.certPem : src.certFile ? readFileSync(src.certFile, 'utf8') : undefined
    const ca = 'keyPem' in src ? src.caPem : src.caFile ? readFileSync(src.caFile, 'utf8') : undefined
    if (certPem && !samePublicKey(keyPem, certPem)) throw new CredentialError('the certificate does not belong to the private key')
    c = { keyPem, certPem: certPem ?? '', caPems: ca === undefined ? [] : Array.isArray(ca) ? ca : [ca], clientId: certPem ? subjectCn(certPem) : undefined }
  }
  const clientId = src.clientId ?? c.clientId
  if (!clientId) throw new CredentialError('no client id: give clientId, or a certificate whose subject CN is the client id')
  return { ...c, clientId }
}
