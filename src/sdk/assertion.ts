// Client side of private_key_jwt (RFC 7523): a departmental system signs a short-lived,
// single-use assertion with its own key to get an access token.
import { createSigner } from 'fast-jwt'
import { randomUUID } from 'node:crypto'

export interface AssertionOptions {
  clientId: string
  keyPem: string
  /** The token endpoint URL (RFC 7523 §3); the node id is also accepted. */
  audience: string
  lifetimeSeconds?: number
  algorithm?: 'RS256' | 'PS256'
}

export function signClientAssertion(o: AssertionOptions): string {
  const sign = createSigner({ key: o.keyPem, algorithm: o.algorithm ?? 'RS256', expiresIn: (o.lifetimeSeconds ?? 60) * 1000 })
  return sign({ iss: o.clientId, sub: o.clientId, aud: o.audience, jti: randomUUID() })
}

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** Exchanges a fresh assertion for an access token at `baseUrl`. */
export async function fetchToken(baseUrl: string, clientId: string, keyPem: string, audience = `${baseUrl}/v1/oauth/token`) {
  const res = await fetch(`${baseUrl}/v1/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: signClientAssertion({ clientId, keyPem, audience }),
    }),
  })
  const body = (await res.json()) as Record<string, any>
  if (!res.ok) throw new Error(`token request failed: ${res.status} ${body.code ?? ''} ${body.detail ?? ''}`)
  return body as { access_token: string; token_type: 'Bearer'; expires_in: number }
}
