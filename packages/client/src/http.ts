// One HTTP exchange over node:http / node:https, the whole answer read. A failure before an
// answer becomes a TongbanError that names the method, the URL and the cause, e.g.
// `POST http://127.0.0.1:8443/v1/oauth/token: ECONNREFUSED (nothing listens there)`: a
// bare "fetch failed" leaves the reader guessing which node and why.
import http from 'node:http'
import https from 'node:https'
import type { Readable } from 'node:stream'
import { TongbanError, type Raw } from './errors.js'

export interface Exchange {
  method: string
  url: string
  headers?: Record<string, string>
  body?: string | Buffer
  /** Keep-alive pool (and TLS options for https); default: Node's global agent. */
  agent?: http.Agent
  timeoutMs: number
  signal?: AbortSignal
  /** Hand the body over unread (streamed downloads); `body` of the result is then empty. */
  stream?: boolean
}

// What a reader can do about the common causes; the code itself is always shown.
const HINTS: Record<string, string> = {
  ECONNREFUSED: 'nothing listens there: is the node running (npm start)? check the URL and port',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name cannot be resolved now (DNS)',
  ECONNRESET: 'the connection was closed by the other side',
  EHOSTUNREACH: 'no route to the host',
  ENETUNREACH: 'no route to the network',
  ETIMEDOUT: 'the connection timed out',
  EPROTO: 'TLS handshake failed (is it http rather than https, or the reverse?)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: the server certificate is self-signed: give the CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS: the server chain ends in an untrusted root: give the CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: the server certificate does not chain to a trusted CA: give the CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'TLS: the server certificate does not chain to a trusted CA: give the CA',
  CERT_HAS_EXPIRED: 'TLS: the server certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: the server certificate does not name this host',
}

/** `CODE (hint): message` of a network error, for a person to read. */
export function describeCause(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { errors?: unknown[] }
  // A host with several addresses fails as an AggregateError whose message is empty.
  const message = (err instanceof Error && err.message) || (Array.isArray(err?.errors) ? err.errors.map((x) => (x as Error).message).join('; ') : String(e))
  const code = typeof err?.code === 'string' ? err.code : undefined
  if (!code) return message
  const hint = HINTS[code]
  return `${code}${hint ? ` (${hint})` : ''}${message && message !== code ? `: ${message}` : ''}`
}

export function exchange(x: Exchange): Promise<Raw & { stream?: Readable }> {
  const where = `${x.method} ${x.url}`
  // Bounds the whole exchange, or for a stream the wait for its answer's head.
  const timeout = new AbortController()
  const timer = setTimeout(() => timeout.abort(), x.timeoutMs)
  const signal = x.signal ? AbortSignal.any([x.signal, timeout.signal]) : timeout.signal
  const requestId = x.headers?.['tongban-request-id']
  return new Promise((resolve, reject) => {
    const fail = (e: unknown) => {
      clearTimeout(timer)
      if (timeout.signal.aborted) reject(new TongbanError({ code: 'TIMEOUT', status: 0, requestId, detail: `${where}: no answer within ${x.timeoutMs} ms`, retryable: true, cause: e }))
      else if (x.signal?.aborted) reject(new TongbanError({ code: 'ABORTED', status: 0, requestId, detail: `${where}: the call was aborted`, cause: e }))
      else reject(new TongbanError({ code: 'NETWORK_ERROR', status: 0, requestId, detail: `${where}: ${describeCause(e)}`, retryable: true, cause: e }))
    }
    let url: URL
    try {
      url = new URL(x.url)
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`not an http(s) URL`)
    } catch (e) {
      clearTimeout(timer)
      reject(new TongbanError({ code: 'BAD_URL', status: 0, requestId, detail: `${x.url}: ${(e as Error).message}`, cause: e }))
      return
    }
    const headers: Record<string, string> = { ...x.headers }
    if (x.body !== undefined) headers['content-length'] = String(Buffer.byteLength(x.body))
    const req = (url.protocol === 'https:' ? https : http).request(url, { method: x.method, headers, agent: x.agent, signal }, (res) => {
      const answer = { status: res.statusCode ?? 0, headers: res.headers as Raw['headers'] }
      if (x.stream && answer.status === 200) {
        clearTimeout(timer)
        resolve({ ...answer, body: Buffer.alloc(0), stream: res })
        return
      }
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ ...answer, body: Buffer.concat(chunks) })
      })
      res.on('error', fail)
    })
    req.on('error', fail)
    req.end(x.body)
  })
}
