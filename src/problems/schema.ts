// The problem+json shape (RFC 9457) for route schemas: documents every error in OpenAPI
// and serializes it the same way everywhere.
export const problemSchema = {
  $id: 'problem',
  type: 'object',
  description: 'RFC 9457 problem details with a stable machine code',
  required: ['type', 'title', 'status', 'code'],
  properties: {
    type: { type: 'string', examples: ['urn:tongban:problem:POLICY_NO_GRANT'] },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', examples: ['INPUT_INVALID_ID_NUMBER'] },
    detail: { type: 'string' },
    requestId: { type: 'string' },
    error: { type: 'string', description: 'OAuth 2.0 error code (token endpoint only)' },
    hop: { type: 'string', description: 'the upstream or node that failed' },
    errors: {
      type: 'array',
      items: { type: 'object', properties: { pointer: { type: 'string' }, detail: { type: 'string' } } },
    },
  },
} as const

export function problemResponses(...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(
    statuses.map((s) => [s, { description: 'problem+json', content: { 'application/problem+json': { schema: { $ref: 'problem#' } } } }]),
  )
}
