// One access token by client credentials with private_key_jwt (RFC 7523), without a
// client object: what scripts and the `tongban token` command need. Every failure is a
// TongbanError naming the URL and the cause (connection refused, timeout, TLS, or the
// gateway's problem code).
import type http from 'node:http'
import { CLIENT_ASSERTION_TYPE, signClientAssertion, type AssertionAlgorithm } from './assertion.js'
import { errorFrom, TongbanError } from './errors.js'
import { exchange } from './http.js'

export interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  [field: string]: unknown
}

/** Exchanges a fresh assertion for an access token at `baseUrl`. */
export async function fetchToken(
  baseUrl: string,
  clientId: string,
  keyPem: string,
  audience = `${baseUrl.replace(/\/+$/, '')}/v1/oauth/token`,
  o: { timeoutMs?: number; agent?: http.Agent; algorithm?: AssertionAlgorithm } = {},
): Promise<TokenResponse> {
  const url = `${baseUrl.replace(/\/+$/, '')}/v1/oauth/token`
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: signClientAssertion({ clientId, keyPem, audience, algorithm: o.algorithm }),
  }).toString()
  const res = await exchange({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body, agent: o.agent, timeoutMs: o.timeoutMs ?? 10_000 })
  if (res.status !== 200) throw errorFrom(res, { url: `POST ${url}` })
  let t: TokenResponse
  try {
    t = JSON.parse(res.body.toString('utf8'))
  } catch (e) {
    throw new TongbanError({ code: 'BAD_RESPONSE', status: res.status, detail: `POST ${url}: the answer is not JSON`, cause: e })
  }
  if (typeof t?.access_token !== 'string' || !t.access_token) throw new TongbanError({ code: 'BAD_RESPONSE', status: res.status, detail: `POST ${url}: the answer holds no access_token` })
  return t
}
