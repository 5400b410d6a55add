// Finishing touches on the OpenAPI document generated from the route schemas (the route
// schemas stay the source of truth): every problem+json response gets examples of the
// stable codes a client may meet at that status, and the query routes document 429
// (quota, rate limit) as well. Statuses and meanings come from src/problems/codes.ts.
import { PROBLEM_CODES, type ListedCode } from '../problems/codes.js'

type Json = Record<string, any>

const QUERY_TAGS = new Set(['verify', 'resources', 'batches'])
// Which codes each status shows as examples: on the query routes, and on all others.
const BY_STATUS_QUERY: Record<string, ListedCode[]> = {
  400: ['INPUT_INVALID_ID_NUMBER', 'INPUT_PURPOSE_MISSING', 'INPUT_CASE_ID_INVALID', 'INPUT_INVALID'],
  401: ['AUTH_TOKEN_MISSING', 'AUTH_TOKEN_EXPIRED', 'AUTH_TOKEN_INVALID'],
  403: ['POLICY_NO_GRANT', 'POLICY_SHARE_NONE', 'POLICY_PURPOSE_NOT_GRANTED', 'POLICY_GRANT_REVOKED', 'AUTH_ROLE_REQUIRED'],
  404: ['RESOURCE_NOT_FOUND', 'SERVICE_UNKNOWN'],
  409: ['BATCH_FINISHED'],
  410: ['RESOURCE_RETIRED'],
  413: ['INPUT_TOO_LARGE', 'BATCH_TOO_MANY_ITEMS'],
  415: ['INPUT_UNSUPPORTED_MEDIA_TYPE'],
  429: ['QUOTA_EXCEEDED', 'RATE_LIMITED'],
  500: ['INTERNAL'],
  502: ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_ERROR', 'UPSTREAM_BAD_RESPONSE'],
  503: ['AUDIT_UNAVAILABLE', 'QUOTA_UNAVAILABLE'],
  504: ['UPSTREAM_TIMEOUT'],
}
const BY_STATUS: Record<string, ListedCode[]> = {
  400: ['INPUT_INVALID', 'INPUT_MALFORMED_JSON'],
  401: ['AUTH_TOKEN_MISSING', 'AUTH_TOKEN_EXPIRED', 'AUTH_TOKEN_INVALID'],
  403: ['AUTH_ROLE_REQUIRED'],
  404: ['NOT_FOUND'],
  413: ['INPUT_TOO_LARGE'],
  415: ['INPUT_UNSUPPORTED_MEDIA_TYPE'],
  429: ['RATE_LIMITED'],
  500: ['INTERNAL'],
  503: ['AUDIT_UNAVAILABLE'],
}

// Operations whose errors differ from the rest: the token endpoint never sees an access
// token, so its 401 codes are the client assertion's (src/auth/client-assertion.ts).
const BY_OPERATION: Record<string, Record<string, ListedCode[]>> = {
  'post /v1/oauth/token': {
    400: ['AUTH_UNSUPPORTED_GRANT_TYPE', 'AUTH_ASSERTION_TYPE', 'INPUT_INVALID'],
    401: [
      'AUTH_UNKNOWN_CLIENT', 'AUTH_CLIENT_SUSPENDED', 'AUTH_CLIENT_CERT_REVOKED', 'AUTH_CLIENT_CERT_EXPIRED', 'AUTH_CLIENT_CERT_UNTRUSTED',
      'AUTH_ASSERTION_MALFORMED', 'AUTH_ASSERTION_INVALID', 'AUTH_ASSERTION_EXPIRED', 'AUTH_ASSERTION_LIFETIME',
      'AUTH_ASSERTION_BAD_SIGNATURE', 'AUTH_ASSERTION_WRONG_AUDIENCE', 'AUTH_ASSERTION_REPLAYED', 'AUTH_ASSERTION_BEFORE_REPLAY_WINDOW',
    ],
  },
}

const TITLES: Record<string, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 410: 'Gone', 412: 'Precondition Failed',
  413: 'Content Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
}

const answeredWith = (code: ListedCode, status: string) => (PROBLEM_CODES[code].status as readonly number[]).includes(Number(status))

const example = (code: ListedCode, status: string) => ({
  summary: PROBLEM_CODES[code].en,
  value: {
    type: `urn:tongban:problem:${code}`,
    title: TITLES[status] ?? 'Error',
    status: Number(status),
    code,
    detail: PROBLEM_CODES[code].en,
    requestId: '01JEXAMPLE00000000000000AA',
  },
})

/** Adds problem examples (and 429 on query routes) to a generated OpenAPI document, in place. */
export function enrichOpenApi<T extends Json>(doc: T): T {
  const problemRef = (() => {
    for (const ops of Object.values<Json>(doc.paths ?? {})) {
      for (const op of Object.values<Json>(ops)) {
        for (const r of Object.values<Json>(op?.responses ?? {})) {
          const s = r?.content?.['application/problem+json']?.schema
          if (s) return s
        }
      }
    }
    return undefined
  })()
  for (const [path, ops] of Object.entries<Json>(doc.paths ?? {})) {
    for (const [method, op] of Object.entries<Json>(ops)) {
      if (!op || typeof op !== 'object' || !op.responses) continue
      const special = BY_OPERATION[`${method} ${path}`]
      const query = (op.tags ?? []).some((t: string) => QUERY_TAGS.has(t))
      if (query && op.tags?.[0] !== 'batches' && !op.responses['429'] && problemRef) {
        op.responses['429'] = { description: 'problem+json', content: { 'application/problem+json': { schema: problemRef } } }
      }
      for (const [status, r] of Object.entries<Json>(op.responses)) {
        const media = r?.content?.['application/problem+json']
        if (!media || media.examples) continue
        const codes = (special?.[status] ?? (query ? BY_STATUS_QUERY : BY_STATUS)[status] ?? []).filter((c) => answeredWith(c, status))
        if (codes.length === 0) continue
        media.examples = Object.fromEntries(codes.map((c) => [c, example(c, status)]))
        r.description = `problem+json; codes include ${codes.join(', ')}`
      }
    }
  }
  return doc
}
