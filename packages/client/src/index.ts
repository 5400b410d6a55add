// `@tongban/client`: the TypeScript SDK for departmental systems. No dependencies: node:http(s),
// node:crypto (JWS, X.509, PKCS#12) and a few lines of RFC 8785.
//
//   const tb = await TongbanClient.connect({ baseUrl, credential: { p12: 'jn.p12', password }, context: { purpose: 'SA-01' } })
//   const { data, evidence } = await tb.verify.identity({ idNumber, name }, { caseId: 'JN-2026-1000' })
//
// - credential from PKCS#12 or PEM; tokens by client credentials with private_key_jwt
//   (RFC 7523), fetched once, shared by concurrent calls, refreshed before they expire and
//   once more if the gateway says a token has expired;
// - typed requests and answers per verification service and catalogue resource (generated
//   from the gateway's JSON Schemas: ./types.ts);
// - retries for idempotent calls only (verifications; other resources when told), with
//   exponential backoff and jitter, and the same Tongban-Request-Id on every attempt;
// - every answer's Tongban-Evidence checked by default: body digest, Merkle path, checkpoint
//   signature by the node certificate (fetched from /v1/node) chaining to a pinned CA;
// - errors as TongbanError with the problem's stable `code`, the HTTP `status` and the
//   `requestId` to quote to the operator.
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { signClientAssertion, CLIENT_ASSERTION_TYPE } from './assertion.js'
import { loadCredential, type Credential, type CredentialSource } from './credentials.js'
import { decodeEvidence, type Evidence } from './evidence.js'
import { EvidenceVerifier } from './verifier.js'
import { jcs } from './jcs.js'
import { errorFrom, problemCode, TongbanError, type Problem, type Raw } from './errors.js'
import { exchange } from './http.js'
import { VERIFY_SERVICES, type ResourceOperations, type VerifyServices } from './types.js'

export * from './types.js'
export { signClientAssertion, signJwt, CLIENT_ASSERTION_TYPE, type AssertionOptions, type AssertionAlgorithm } from './assertion.js'
export { fetchToken, type TokenResponse } from './token.js'
export { loadCredential, loadPkcs12, CredentialError, type Credential, type CredentialSource } from './credentials.js'
export { decodeEvidence, digest, certThumbprint, type Evidence, type AuditRecord, type Checkpoint } from './evidence.js'
export { EvidenceVerifier, type VerifyResult } from './verifier.js'
export { TongbanError, type Problem } from './errors.js'
export { describeCause } from './http.js'
export { jcs } from './jcs.js'

/** Statements that go with every query (README.md). */
export interface QueryContext {
  /** Purpose code from GET /v1/purposes, e.g. 'SA-01'. */
  purpose?: string
  /** Free text description of the purpose (sent percent-encoded after the code). */
  purposeText?: string
  /** The case (办件) number. */
  caseId?: string
  /** The civil servant at the keyboard. */
  operator?: string
}

export interface CallOptions extends QueryContext {
  /** Your own request id (8–64 of A-Z a-z 0-9 . _ : -); kept on every retry. Default: a new UUID. */
  requestId?: string
  signal?: AbortSignal
  /** Per-call override of the client's timeout (ms). */
  timeoutMs?: number
}

export interface ResourceCallOptions extends CallOptions {
  /** Whether the operation may be retried (the catalogue says; default false for resources). */
  idempotent?: boolean
}

/** An answer and its proof. */
export interface Answer<T> {
  data: T
  status: number
  /** The node's request id of the answered attempt. */
  requestId: string
  /** The Tongban-Request-Id this SDK sent, shared by the attempts of the call (the record's clientRequestId). */
  clientRequestId: string
  /** The decoded, verified evidence (null only with verifyEvidence: false and no header). */
  evidence: Evidence | null
  /** The Tongban-Evidence header as received: keep it with the answer as proof. */
  evidenceHeader: string | null
  /** The exact body bytes the evidence covers. */
  body: Buffer
}

export interface NodeInfo {
  id: string
  name: string
  region: string
  tier: string
  publicUrl: string
  replica: string
  kid: string
  auditAlg: string
  certificate: string
  caCertificate: string
}

export interface BatchProgress {
  id: string
  status: 'queued' | 'running' | 'completed' | 'cancelled'
  resource: string
  operation: string
  service: string | null
  purpose: string
  caseId: string
  total: number
  done: number
  succeeded: number
  failed: number
  pending: number
  itemsPerSecond: number | null
  etaSeconds: number | null
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
}

export interface BatchResult<T = Record<string, unknown>> {
  index: number
  status: number
  requestId: string
  body?: T
  problem?: Problem
  evidence: string
  /** Tongban-Data-Notice of the item's answer: the provider corrected this subject's data (outside the evidence). */
  dataNotice?: string
}

export type BatchTarget =
  | { service: keyof VerifyServices | (string & {}) }
  | { resource: string; operation: string }

export interface ClientOptions {
  /** The gateway, e.g. https://tongban.js.gov.cn */
  baseUrl: string
  credential: CredentialSource | Credential
  /**
   * Trust anchor(s) for evidence (and TLS): the province root CA, PEM. Default: the CA
   * certificates that came with the credential (a PKCS#12 from the CA carries its chain).
   */
  ca?: string | string[]
  /** Check Tongban-Evidence on every answer (default true). */
  verifyEvidence?: boolean
  /** Defaults for purpose, case id and operator. */
  context?: QueryContext
  /** Retries of idempotent calls after a network error, 429 RATE_LIMITED, 502, 503 or 504 (default 2). */
  retries?: number
  /** First backoff in ms, doubled each retry, with jitter (default 200). */
  backoffMs?: number
  /** Per attempt (default 10000 ms). */
  timeoutMs?: number
  /** Refresh the token this long before it expires (default: 60 s, at most a fifth of its lifetime). */
  refreshSkewSeconds?: number
  /** Assertion audience (default: the node id from /v1/node, which every node accepts). */
  audience?: string
  /** An http(s).Agent of your own (proxies, pools); default: a keep-alive Agent (with mTLS for https). */
  agent?: http.Agent
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,64}$/
const RETRY_STATUS = new Set([502, 503, 504])
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(t)
      reject(signal.reason)
    }, { once: true })
  })

const isLoaded = (c: CredentialSource | Credential): c is Credential =>
  'caPems' in c && Array.isArray(c.caPems) && typeof c.clientId === 'string' && typeof c.keyPem === 'string' && 'certPem' in c

/** A body sent as NDJSON rather than JSON. */
export class NdjsonBody {
  constructor(readonly text: string) {}
}

type VerifyMethods = { [S in keyof VerifyServices]: (body: VerifyServices[S]['request'], options?: CallOptions) => Promise<Answer<VerifyServices[S]['response']>> }

export class TongbanClient {
  readonly baseUrl: string
  readonly credential: Credential
  /** Typed verifications: `client.verify.identity({ idNumber, name })`. */
  readonly verify: VerifyMethods
  readonly batches: BatchApi

  private readonly opts: ClientOptions
  private readonly agent: http.Agent
  private readonly ownAgent: boolean
  private readonly cas: string[]
  private readonly verifier: EvidenceVerifier
  private nodeInfo: NodeInfo | null = null
  private nodeFetch: Promise<NodeInfo> | null = null
  private tokenState: { value: string; refreshAt: number; expiresAt: number } | null = null
  private tokenFetch: Promise<string> | null = null
  /** Tokens fetched so far (observability and tests). */
  tokensFetched = 0

  constructor(opts: ClientOptions) {
    this.opts = opts
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '')
    this.credential = isLoaded(opts.credential) ? opts.credential : loadCredential(opts.credential)
    this.cas = opts.ca === undefined ? this.credential.caPems : Array.isArray(opts.ca) ? opts.ca : [opts.ca]
    this.verifier = new EvidenceVerifier(this.cas)
    if (opts.verifyEvidence !== false && this.cas.length === 0) {
      throw new TypeError('TongbanClient: evidence verification needs a trusted CA: give `ca` (the province root CA PEM) or a credential that carries it')
    }
    this.ownAgent = !opts.agent
    this.agent = opts.agent ?? (this.baseUrl.startsWith('https:')
      ? new https.Agent({ keepAlive: true, maxSockets: 64, ca: this.cas.length ? this.cas : undefined, cert: this.credential.certPem || undefined, key: this.credential.keyPem })
      : new http.Agent({ keepAlive: true, maxSockets: 64 }))
    this.verify = Object.fromEntries(
      VERIFY_SERVICES.map((s) => [s, (body: unknown, o?: CallOptions) => this.verifyService(s, body as never, o)]),
    ) as unknown as VerifyMethods
    this.batches = new BatchApi(this)
  }

  /** Creates a client and checks that the gateway is reachable and the credential works. */
  static async connect(opts: ClientOptions): Promise<TongbanClient> {
    const c = new TongbanClient(opts)
    try {
      await c.node()
      await c.token()
    } catch (e) {
      await c.close()
      throw e
    }
    return c
  }

  /**
   * POST /v1/verify/{service}: verifications are idempotent, so retried when it is safe.
   * Typed for the services types.ts was generated with; any other name (a service added to
   * the catalogue since) takes a plain object and answers `T`.
   */
  verifyService<S extends keyof VerifyServices>(service: S, body: VerifyServices[S]['request'], options?: CallOptions): Promise<Answer<VerifyServices[S]['response']>>
  verifyService<T = Record<string, unknown>>(service: string, body: Record<string, unknown>, options?: CallOptions): Promise<Answer<T>>
  verifyService(service: string, body: unknown, options: CallOptions = {}): Promise<Answer<unknown>> {
    return this.call('POST', `/v1/verify/${encodeURIComponent(service)}`, body, options, true, true)
  }

  /** POST /v1/resources/{code}/{operation}: typed for the resources the catalogue had when types.ts was generated. */
  query<C extends keyof ResourceOperations, O extends keyof ResourceOperations[C] & string>(
    code: C,
    operation: O,
    body: ResourceOperations[C][O] extends { request: infer R } ? R : never,
    options?: ResourceCallOptions,
  ): Promise<Answer<ResourceOperations[C][O] extends { response: infer A } ? A : never>>
  query<T = Record<string, unknown>>(code: string, operation: string, body: unknown, options?: ResourceCallOptions): Promise<Answer<T>>
  query(code: string, operation: string, body: unknown, options: ResourceCallOptions = {}): Promise<Answer<unknown>> {
    return this.call('POST', `/v1/resources/${encodeURIComponent(code)}/${encodeURIComponent(operation)}`, body, options, options.idempotent ?? false, true)
  }

  /** GET /v1/node (cached): the node's identity and the certificate that signs its evidence. */
  async node(refresh = false): Promise<NodeInfo> {
    if (this.nodeInfo && !refresh) return this.nodeInfo
    this.nodeFetch ??= (async () => {
      try {
        const res = await this.send('GET', '/v1/node', undefined, {}, this.opts.timeoutMs ?? 10_000)
        if (res.status !== 200) throw errorFrom(res, { url: `GET ${this.baseUrl}/v1/node` })
        const info = this.json(res, undefined) as NodeInfo
        this.nodeInfo = info
        return info
      } finally {
        this.nodeFetch = null
      }
    })()
    return this.nodeFetch
  }

  /** A valid access token: cached, refreshed ahead of expiry, one fetch for concurrent callers. */
  async token(force = false): Promise<string> {
    const now = Date.now()
    const s = this.tokenState
    if (!force && s && now < s.refreshAt) return s.value
    this.tokenFetch ??= this.fetchToken().finally(() => {
      this.tokenFetch = null
    })
    return this.tokenFetch
  }

  private async fetchToken(): Promise<string> {
    const audience = this.opts.audience ?? (await this.node()).id
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: signClientAssertion({ clientId: this.credential.clientId, keyPem: this.credential.keyPem, audience }),
    })
    const started = Date.now()
    const res = await this.send('POST', '/v1/oauth/token', form.toString(), { 'content-type': 'application/x-www-form-urlencoded' }, this.opts.timeoutMs ?? 10_000)
    if (res.status !== 200) throw errorFrom(res, { url: `POST ${this.baseUrl}/v1/oauth/token` })
    const t = this.json(res, undefined) as { access_token: string; expires_in: number }
    const lifetime = Math.max(1, t.expires_in) * 1000
    const skew = Math.min((this.opts.refreshSkewSeconds ?? 60) * 1000, lifetime / 5)
    this.tokenState = { value: t.access_token, refreshAt: started + lifetime - skew, expiresAt: started + lifetime }
    this.tokensFetched++
    return t.access_token
  }

  /**
   * One API call with the SDK's rules: bearer token (refreshed once on AUTH_TOKEN_EXPIRED),
   * context headers, retries for idempotent calls with the same request id, evidence check.
   */
  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, options: CallOptions, idempotent: boolean, query: boolean): Promise<Answer<T>> {
    const requestId = options.requestId ?? randomUUID()
    if (!REQUEST_ID.test(requestId)) throw new TypeError('requestId: 8–64 of A-Z a-z 0-9 . _ : -')
    const headers: Record<string, string> = { 'tongban-request-id': requestId, accept: 'application/json, application/problem+json' }
    if (query) Object.assign(headers, this.contextHeaders(options))
    let payload: string | undefined
    if (body instanceof NdjsonBody) {
      payload = body.text
      headers['content-type'] = 'application/x-ndjson'
    } else if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body)
      headers['content-type'] = 'application/json'
    }
    const retries = idempotent ? (this.opts.retries ?? 2) : 0
    let refreshed = false
    for (let attempt = 0; ; attempt++) {
      headers.authorization = `Bearer ${await this.token()}`
      let res: Raw
      try {
        res = await this.send(method, path, payload, headers, options.timeoutMs ?? this.opts.timeoutMs ?? 10_000, options.signal)
      } catch (e) {
        const err = e as TongbanError
        if (options.signal?.aborted) throw err
        if (attempt < retries && err.retryable) {
          await this.backoff(attempt, undefined, options.signal)
          continue
        }
        throw err
      }
      if (res.status === 401 && !refreshed) {
        const code = problemCode(res)
        if (code === 'AUTH_TOKEN_EXPIRED' || code === 'AUTH_TOKEN_INVALID') {
          // Refused at authentication, before anything ran: safe to repeat for any call.
          refreshed = true
          await this.token(true)
          attempt--
          continue
        }
      }
      const retryable = RETRY_STATUS.has(res.status) || (res.status === 429 && problemCode(res) === 'RATE_LIMITED')
      if (retryable && attempt < retries) {
        await this.backoff(attempt, res.headers['retry-after'], options.signal)
        continue
      }
      if (res.status >= 400) throw errorFrom(res, { url: `${method} ${this.baseUrl}${path}`, requestId, retryable, clientRequestId: requestId })
      const data = this.json(res, requestId) as T
      const header = typeof res.headers['tongban-evidence'] === 'string' ? res.headers['tongban-evidence'] : null
      let evidence: Evidence | null = null
      if (query && this.opts.verifyEvidence !== false) evidence = await this.checkEvidence(header, res.body, res.status, requestId)
      else if (header) {
        try {
          evidence = decodeEvidence(header)
        } catch {}
      }
      return { data, status: res.status, requestId: (res.headers['tongban-request-id'] as string) ?? requestId, clientRequestId: requestId, evidence, evidenceHeader: header, body: res.body }
    }
  }

  /**
   * Checks evidence against the node certificate (re-fetched once if the checkpoint names
   * another key: the node may have rotated its certificate) and the pinned CA.
   */
  async checkEvidence(header: string | null, body: Buffer | string, status = 200, requestId?: string): Promise<Evidence> {
    if (!header) throw new TongbanError({ code: 'EVIDENCE_MISSING', status, requestId, detail: 'the answer carries no Tongban-Evidence' })
    this.verifier.addCertificate((await this.node()).certificate)
    let v = this.verifier.verify(header, body)
    if (!v.ok && v.reason === 'unknown-kid') {
      this.verifier.addCertificate((await this.node(true)).certificate)
      v = this.verifier.verify(header, body)
    }
    if (v.ok) return v.evidence
    throw new TongbanError({ code: 'EVIDENCE_INVALID', status, requestId, detail: `the answer's evidence does not verify: ${v.reason}` })
  }

  private contextHeaders(o: QueryContext): Record<string, string> {
    const d = this.opts.context ?? {}
    const purpose = o.purpose ?? d.purpose
    const text = o.purpose ? o.purposeText : (o.purposeText ?? d.purposeText)
    const caseId = o.caseId ?? d.caseId
    const operator = o.operator ?? d.operator
    const h: Record<string, string> = {}
    if (purpose) h['tongban-purpose'] = text ? `${purpose};${encodeURIComponent(text)}` : purpose
    if (caseId) h['tongban-case-id'] = caseId
    if (operator) h['tongban-operator'] = operator
    return h
  }

  private async backoff(attempt: number, retryAfter: string | string[] | undefined, signal?: AbortSignal) {
    const base = this.opts.backoffMs ?? 200
    const given = typeof retryAfter === 'string' && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : 0
    const ms = Math.min(10_000, Math.max(given, base * 2 ** attempt * (0.5 + Math.random())))
    await sleep(ms, signal)
  }

  /** The raw exchange: one HTTP request, the whole body read. */
  async send(method: string, path: string, body: string | Buffer | undefined, headers: Record<string, string>, timeoutMs: number, signal?: AbortSignal): Promise<Raw> {
    headers = { 'tongban-request-id': randomUUID(), ...headers }
    return exchange({ method, url: `${this.baseUrl}${path}`, headers, body, agent: this.agent, timeoutMs, signal })
  }

  /** A streamed GET (NDJSON downloads). */
  async stream(path: string, signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
    const url = `${this.baseUrl}${path}`
    const res = await exchange({
      method: 'GET',
      url,
      headers: { authorization: `Bearer ${await this.token()}`, accept: 'application/x-ndjson, application/problem+json' },
      agent: this.agent,
      // The download may take long; only the wait for its first bytes is bounded.
      timeoutMs: this.opts.timeoutMs ?? 10_000,
      signal,
      stream: true,
    })
    if (res.status !== 200 || !res.stream) throw errorFrom(res, { url: `GET ${url}` })
    return res.stream
  }

  private json(res: Raw, requestId: string | undefined): unknown {
    try {
      return JSON.parse(res.body.toString('utf8'))
    } catch (e) {
      throw new TongbanError({ code: 'BAD_RESPONSE', status: res.status, requestId, detail: 'the answer is not JSON', cause: e })
    }
  }

  async close(): Promise<void> {
    if (this.ownAgent) this.agent.destroy()
  }
}

/** Bulk verification: submit, follow, download (each line's evidence checked), cancel. */
export class BatchApi {
  constructor(private readonly client: TongbanClient) {}

  /** POST /v1/batches (NDJSON upload). Up to 100,000 items of one service or resource operation. */
  async submit(target: BatchTarget, items: Iterable<unknown>, options: CallOptions = {}): Promise<BatchProgress> {
    const q = 'service' in target ? `service=${encodeURIComponent(target.service)}` : `resource=${encodeURIComponent(target.resource)}&operation=${encodeURIComponent(target.operation)}`
    const lines: string[] = []
    for (const item of items) lines.push(JSON.stringify(item))
    const body = lines.join('\n') + '\n'
    // Not retried: a lost 202 would submit the batch twice.
    const answer = await this.client.call<BatchProgress>('POST', `/v1/batches?${q}`, new NdjsonBody(body), options, false, true)
    return answer.data
  }

  async get(id: string): Promise<BatchProgress> {
    return (await this.client.call<BatchProgress>('GET', `/v1/batches/${encodeURIComponent(id)}`, undefined, {}, true, false)).data
  }

  async cancel(id: string): Promise<BatchProgress> {
    return (await this.client.call<BatchProgress>('DELETE', `/v1/batches/${encodeURIComponent(id)}`, undefined, {}, true, false)).data
  }

  /** Polls until the batch has ended; onProgress sees every poll. */
  async wait(id: string, o: { intervalMs?: number; onProgress?: (p: BatchProgress) => void; signal?: AbortSignal } = {}): Promise<BatchProgress> {
    for (;;) {
      const p = await this.get(id)
      o.onProgress?.(p)
      if (p.status === 'completed' || p.status === 'cancelled') return p
      await sleep(o.intervalMs ?? 1000, o.signal)
    }
  }

  /**
   * The results as they are stored, in index order. Each line's evidence is verified
   * (digest of JCS(body or problem), path, signature, CA) unless verify is false; a line
   * that does not verify throws EVIDENCE_INVALID.
   */
  async *results<T = Record<string, unknown>>(id: string, o: { from?: number; verify?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<BatchResult<T>> {
    const stream = await this.client.stream(`/v1/batches/${encodeURIComponent(id)}/results${o.from ? `?from=${o.from}` : ''}`, o.signal)
    let tail = ''
    const decoder = new TextDecoder()
    const parse = async (line: string) => {
      const r = JSON.parse(line) as BatchResult<T>
      if (o.verify !== false) await this.client.checkEvidence(r.evidence, jcs(r.body ?? r.problem), r.status, r.requestId)
      return r
    }
    for await (const chunk of stream) {
      const parts = (tail + decoder.decode(chunk, { stream: true })).split('\n')
      tail = parts.pop()!
      for (const p of parts) if (p.trim()) yield await parse(p)
    }
    tail += decoder.decode()
    if (tail.trim()) yield await parse(tail)
  }
}
