// Finishing touches on the OpenAPI document generated from the route schemas (the route
// schemas stay the source of truth): every problem+json response gets examples of the
// stable codes a client may meet at that status, and the query routes document 429
// (quota, rate limit) as well.
type Json = Record<string, any>

/** What each code means, for the examples and docs/sdk.md. */
export const PROBLEM_CODES: Record<string, [status: number, meaning: string]> = {
  INPUT_INVALID: [400, 'the body, query or a header does not match the schema; `errors` lists JSON pointers'],
  INPUT_MALFORMED_JSON: [400, 'the body is not valid JSON'],
  INPUT_MALFORMED_NDJSON: [400, 'a line of an NDJSON upload is not valid JSON'],
  INPUT_INVALID_ID_NUMBER: [400, 'a GB 11643 id number fails its check character, date or province prefix'],
  INPUT_PERIOD_REVERSED: [400, 'a period (from, to) starts after it ends: refused before anything leaves the gateway'],
  INPUT_PURPOSE_MISSING: [400, 'header Tongban-Purpose is required'],
  INPUT_PURPOSE_UNKNOWN: [400, 'the purpose code is not in GET /v1/purposes'],
  INPUT_CASE_ID_MISSING: [400, 'header Tongban-Case-Id is required'],
  INPUT_CASE_ID_INVALID: [400, 'Tongban-Case-Id: 1–64 of A-Z a-z 0-9 - _ . : /'],
  INPUT_CASE_ID_PERSONAL_DATA: [400, 'Tongban-Case-Id holds a GB 11643 id number or GB 32100 credit code: personal data never enters the audit log'],
  INPUT_OPERATOR_PERSONAL_DATA: [400, 'Tongban-Operator holds a GB 11643 id number or GB 32100 credit code'],
  INPUT_PURPOSE_PERSONAL_DATA: [400, 'the Tongban-Purpose description holds a GB 11643 id number or GB 32100 credit code'],
  INPUT_REQUEST_ID_PERSONAL_DATA: [400, 'Tongban-Request-Id holds a GB 11643 id number or GB 32100 credit code'],
  AUTH_TOKEN_MISSING: [401, 'no access token (Authorization: Bearer …)'],
  AUTH_TOKEN_EXPIRED: [401, 'the access token has expired: get a new one'],
  AUTH_TOKEN_INVALID: [401, 'the access token is not valid for this node'],
  AUTH_ROLE_REQUIRED: [403, 'the caller lacks the role this operation needs'],
  POLICY_NO_GRANT: [403, 'a conditional resource needs an approved grant (POST /v1/applications)'],
  POLICY_SHARE_NONE: [403, 'the resource is not shared through the gateway (不予共享)'],
  POLICY_PURPOSE_NOT_GRANTED: [403, 'the grant does not cover the stated purpose'],
  POLICY_GRANT_REVOKED: [403, 'the grant has been revoked'],
  POLICY_GRANT_EXPIRED: [403, 'the grant has expired'],
  NOT_FOUND: [404, 'no such route'],
  RESOURCE_NOT_FOUND: [404, 'no such resource in the catalogue'],
  SERVICE_UNKNOWN: [404, 'no such verification service'],
  BATCH_NOT_FOUND: [404, 'no such batch (or it belongs to another system)'],
  BATCH_FINISHED: [409, 'the batch has already completed'],
  RESOURCE_RETIRED: [410, 'the resource has been retired'],
  INPUT_TOO_LARGE: [413, 'the body is larger than the limit'],
  BATCH_TOO_MANY_ITEMS: [413, 'a batch holds at most 100,000 items'],
  INPUT_UNSUPPORTED_MEDIA_TYPE: [415, 'send application/json (or NDJSON where accepted)'],
  QUOTA_EXCEEDED: [429, "the grant's daily quota is used up"],
  RATE_LIMITED: [429, 'too many queries per second from this system: retry shortly'],
  INTERNAL: [500, 'unexpected; logged with the request id'],
  UPSTREAM_UNAVAILABLE: [502, 'the provider (hop) is unreachable'],
  UPSTREAM_ERROR: [502, 'the provider failed'],
  UPSTREAM_BAD_RESPONSE: [502, 'the provider answered outside its schema'],
  AUDIT_UNAVAILABLE: [503, 'the audit record could not be made durable: nothing was released; retry'],
  QUOTA_UNAVAILABLE: [503, 'the quota store is unavailable: conditional data cannot be released'],
  METRICS_LOOPBACK_ONLY: [403, '/metrics is served to loopback clients unless a metrics token is configured'],
  UPSTREAM_TIMEOUT: [504, 'the provider did not answer in time'],
}

const QUERY_TAGS = new Set(['verify', 'resources', 'batches'])
const BY_STATUS_QUERY: Record<string, string[]> = {
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
const BY_STATUS: Record<string, string[]> = {
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

const TITLES: Record<string, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 410: 'Gone', 412: 'Precondition Failed',
  413: 'Content Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
}

const example = (code: string, status: string) => ({
  summary: PROBLEM_CODES[code]?.[1] ?? code,
  value: {
    type: `urn:tongban:problem:${code}`,
    title: TITLES[status] ?? 'Error',
    status: Number(status),
    code,
    detail: PROBLEM_CODES[code]?.[1] ?? code,
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
  for (const ops of Object.values<Json>(doc.paths ?? {})) {
    for (const op of Object.values<Json>(ops)) {
      if (!op || typeof op !== 'object' || !op.responses) continue
      const query = (op.tags ?? []).some((t: string) => QUERY_TAGS.has(t))
      if (query && op.tags?.[0] !== 'batches' && !op.responses['429'] && problemRef) {
        op.responses['429'] = { description: 'problem+json', content: { 'application/problem+json': { schema: problemRef } } }
      }
      for (const [status, r] of Object.entries<Json>(op.responses)) {
        const media = r?.content?.['application/problem+json']
        if (!media || media.examples) continue
        const codes = ((query ? BY_STATUS_QUERY : BY_STATUS)[status] ?? []).filter((c) => PROBLEM_CODES[c])
        if (codes.length === 0) continue
        media.examples = Object.fromEntries(codes.map((c) => [c, example(c, status)]))
        r.description = `problem+json; codes include ${codes.join(', ')}`
      }
    }
  }
  return doc
}
