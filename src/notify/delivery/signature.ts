// The `Tongban-Signature` header of a webhook (docs/notifications.md, "Verifying a webhook"):
// the node's key signs `<t>.<id>.<body>`, so a receiver checks with the node certificate
// that this node sent exactly this body, and refuses a replay (an old `t`, an id seen before).
import { createSigner, verifySignature, type Signer } from '../../pki/suites.js'

export const SIGNATURE_HEADER = 'tongban-signature'
const ALG = 'RS256' as const

export interface SignatureParts {
  t: number
  id: string
  alg: string
  kid: string
  sig: string
}

export const signedData = (t: number, id: string, body: string): Buffer => Buffer.from(`${t}.${id}.${body}`, 'utf8')

/** Signs with the node key (RSA: the node identity is an RSA certificate). */
export function webhookSigner(keyPem: string, kid: string): (id: string, body: string, now?: number) => string {
  const signer: Signer = createSigner(ALG, keyPem)
  return (id, body, now = Date.now()) => {
    const sig = signer.sign(signedData(now, id, body)).toString('base64url')
    return `t=${now},id=${id},alg=${ALG},kid=${kid},sig=${sig}`
  }
}

export function parseSignature(header: string): SignatureParts | null {
  const parts = Object.fromEntries(header.split(',').map((p) => { const i = p.indexOf('='); return [p.slice(0, i).trim(), p.slice(i + 1).trim()] }))
  const t = Number(parts.t)
  if (!Number.isSafeInteger(t) || !parts.id || !parts.alg || !parts.sig) return null
  return { t, id: parts.id, alg: parts.alg, kid: parts.kid ?? '', sig: parts.sig }
}

/** What a receiver does (also the reference for docs/notifications.md): signature, then freshness. */
export function verifyWebhook(header: string, body: string, nodeCertPem: string, o: { now?: number; toleranceMs?: number } = {}): SignatureParts | null {
  const p = parseSignature(header)
  if (!p || p.alg !== ALG) return null
  if (Math.abs((o.now ?? Date.now()) - p.t) > (o.toleranceMs ?? 300_000)) return null
  return verifySignature(ALG, nodeCertPem, signedData(p.t, p.id, body), Buffer.from(p.sig, 'base64url')) ? p : null
}
