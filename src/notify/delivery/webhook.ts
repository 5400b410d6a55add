// One webhook attempt: POST the notice, signed (signature.ts); a 2xx answer delivers it.
import { SIGNATURE_HEADER } from './signature.js'

/** A refusal that retrying will not change (a 4xx other than 408/429). */
export class PermanentFailure extends Error {}

export async function postWebhook(url: string, deliveryId: string, body: string, sign: (id: string, body: string) => string, timeoutMs: number): Promise<void> {
  let res: Response
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', [SIGNATURE_HEADER]: sign(deliveryId, body), 'tongban-delivery-id': deliveryId },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    })
    await res.body?.cancel()
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } }
    throw new Error(e.name === 'TimeoutError' ? `timeout after ${timeoutMs} ms` : `unreachable: ${e.cause?.code ?? e.message}`)
  }
  if (res.status >= 200 && res.status < 300) return
  const msg = `HTTP ${res.status}`
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new PermanentFailure(msg)
  throw new Error(msg)
}
