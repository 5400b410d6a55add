// POST /v1/oauth/token — OAuth 2.0 client credentials with a private_key_jwt assertion.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import formbody from '@fastify/formbody'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

interface TokenBody {
  grant_type: string
  client_assertion_type: string
  client_assertion: string
  scope?: string
}

interface Options {
  issue(assertion: string, request: FastifyRequest): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number }>
}

// Registered encapsulated (not fastify-plugin): the form parser serves this route only;
// every other route answers 415 to a form body.
export async function tokenRoute(app: FastifyInstance, opts: Options) {
  await app.register(formbody)
  app.post<{ Body: TokenBody }>('/v1/oauth/token', {
    config: { audit: { resource: 'oauth', operation: 'token' } },
    schema: {
      tags: ['auth'],
      summary: 'Get an access token (client credentials, private_key_jwt, RFC 7523)',
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: {
        type: 'object',
        required: ['grant_type', 'client_assertion_type', 'client_assertion'],
        properties: {
          // Not an enum in the schema: a wrong value answers its own code (AUTH_UNSUPPORTED_GRANT_TYPE,
          // AUTH_ASSERTION_TYPE), not a generic INPUT_INVALID.
          grant_type: { type: 'string', maxLength: 64, description: 'must be client_credentials', examples: ['client_credentials'] },
          client_assertion_type: {
            type: 'string', maxLength: 128, description: `must be ${ASSERTION_TYPE} (RFC 7523)`, examples: [ASSERTION_TYPE],
          },
          client_assertion: {
            type: 'string', minLength: 1, maxLength: 8192,
            description: 'a JWS (RS256, PS256 or ES256) signed with the key of the registered certificate; claims: '
              + 'iss = sub = the client id; aud = this token endpoint URL; iat and exp as NumericDate, exp within the '
              + 'configured longest lifetime (30 s of clock skew allowed); jti of 8 to 128 characters, used once only.',
          },
          scope: { type: 'string', maxLength: 512, description: 'optional; not used by this node (roles come from the registration)' },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            access_token: { type: 'string' },
            token_type: { type: 'string', const: 'Bearer' },
            expires_in: { type: 'integer' },
          },
        },
        ...problemResponses(400, 401, 403, 503),
      },
    },
  }, async (request, reply) => {
    const b = request.body
    if (b.grant_type !== 'client_credentials') {
      throw new Problem(400, 'AUTH_UNSUPPORTED_GRANT_TYPE', 'grant_type must be client_credentials', { error: 'unsupported_grant_type' })
    }
    if (b.client_assertion_type !== ASSERTION_TYPE) {
      throw new Problem(400, 'AUTH_ASSERTION_TYPE', `client_assertion_type must be ${ASSERTION_TYPE}`, { error: 'invalid_request' })
    }
    const token = await opts.issue(b.client_assertion, request)
    reply.header('cache-control', 'no-store')
    return token
  })
}
