// What the SDK throws: the gateway's problem (RFC 9457) with its stable code, or the SDK's
// own code when no answer came (NETWORK_ERROR, TIMEOUT, …), always saying which URL.

/** RFC 9457 problem details as the gateway sends them. */
export interface Problem {
  type: string
  title: string
  status: number
  code: string
  detail?: string
  requestId?: string
  [field: string]: unknown
}

/**
 * Every failure the SDK reports. `code` is the gateway's problem code (AUTH_TOKEN_EXPIRED,
 * POLICY_NO_GRANT, QUOTA_EXCEEDED, INPUT_INVALID_ID_NUMBER, UPSTREAM_TIMEOUT, …) or one of
 * the SDK's own: NETWORK_ERROR, TIMEOUT, ABORTED, EVIDENCE_INVALID, EVIDENCE_MISSING, BAD_RESPONSE,
 * HTTP_<status> (an error without problem details).
 */
export class TongbanError extends Error {
  readonly code: string
  /** HTTP status; 0 when no answer arrived. */
  readonly status: number
  readonly requestId: string | undefined
  /** The Tongban-Request-Id this SDK sent (the same on every attempt of a call); the node keeps it as clientRequestId. */
  readonly clientRequestId: string | undefined
  readonly detail: string | undefined
  readonly problem: Problem | undefined
  /** Whether trying again later could succeed. */
  readonly retryable: boolean

  constructor(o: { code: string; status: number; requestId?: string; clientRequestId?: string; detail?: string; problem?: Problem; retryable?: boolean; cause?: unknown }) {
    super(`${o.code}${o.status ? ` (HTTP ${o.status})` : ''}${o.detail ? `: ${o.detail}` : ''}${o.requestId ? ` [request ${o.requestId}]` : ''}`, { cause: o.cause })
    this.name = 'TongbanError'
    this.code = o.code
    this.status = o.status
    this.requestId = o.requestId
    this.clientRequestId = o.clientRequestId
    this.detail = o.detail
    this.problem = o.problem
    this.retryable = o.retryable ?? false
  }
}

/** An HTTP answer as received: status, headers, the whole body. */
export interface Raw {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** The problem code of an answer's body, if it is problem details. */
export function problemCode(res: Raw): string | undefined {
  try {
    const p = JSON.parse(res.body.toString('utf8')) as Problem
    return typeof p?.code === 'string' ? p.code : undefined
  } catch {
    return undefined
  }
}

/**
 * The error for an answer that is not a success: the problem's code, or HTTP_<status>;
 * `url` (method and URL) goes into the message so that a log line says where it came from.
 */
export function errorFrom(res: Raw, o: { url?: string; requestId?: string; retryable?: boolean; clientRequestId?: string } = {}): TongbanError {
  const rid = (res.headers['tongban-request-id'] as string | undefined) ?? o.requestId
  let problem: Problem | undefined
  try {
    const p = JSON.parse(res.body.toString('utf8'))
    if (p && typeof p === 'object' && typeof p.code === 'string') problem = p
  } catch {}
  const where = o.url ? `${o.url} answered HTTP ${res.status}` : undefined
  if (!problem) return new TongbanError({ code: `HTTP_${res.status}`, status: res.status, requestId: rid, clientRequestId: o.clientRequestId, detail: where, retryable: o.retryable })
  const detail = [where && `${where} ${problem.code}`, problem.detail].filter(Boolean).join(': ') || undefined
  return new TongbanError({ code: problem.code, status: res.status, requestId: problem.requestId ?? rid, clientRequestId: o.clientRequestId, detail, problem, retryable: o.retryable })
}
