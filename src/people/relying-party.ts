// The gateway as an OpenID Connect relying party (openid-client): discovery from the
// configured issuer (lazily, retried after a failure: the gateway starts without the
// provider), the authorization code flow with PKCE (S256), state and nonce, client
// authentication by client_secret_basic or private_key_jwt, ID token checks, userinfo.
import { readFileSync } from 'node:fs'
import { createPrivateKey, webcrypto } from 'node:crypto'
import * as oidc from 'openid-client'
import { Problem } from '../problems/problem.js'

export interface RelyingPartySettings {
  issuer: string
  clientId: string
  clientAuth: 'client_secret_basic' | 'private_key_jwt'
  clientSecret: string | null
  clientKeyFile: string | null
  redirectUrl: string
  postLogoutRedirectUrl: string
  scopes: string
}

export interface AuthorizationStart {
  url: string
  state: string
  nonce: string
  codeVerifier: string
}

export interface CodeAnswer {
  claims: Record<string, unknown>
  idToken?: string
}

const unavailable = (what: string) => new Problem(503, 'AUTH_SIGNIN_UNAVAILABLE', `the identity provider cannot be reached (${what})`)

/** A refusal by the provider or a failed check of its answer, as opposed to no answer at all. */
const isRefusal = (e: unknown) =>
  e instanceof oidc.ResponseBodyError || e instanceof oidc.AuthorizationResponseError || e instanceof oidc.WWWAuthenticateChallengeError ||
  (e instanceof Error && e.name === 'OperationProcessingError') || (e instanceof oidc.ClientError && !(e.cause instanceof TypeError))

async function privateKey(file: string): Promise<webcrypto.CryptoKey> {
  const key = createPrivateKey(readFileSync(file))
  const der = key.export({ type: 'pkcs8', format: 'der' })
  const alg = key.asymmetricKeyType === 'ec' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
  return webcrypto.subtle.importKey('pkcs8', der, alg, false, ['sign'])
}

export class RelyingParty {
  private discovered: Promise<oidc.Configuration> | null = null

  constructor(private readonly s: RelyingPartySettings) {}

  private async discover(): Promise<oidc.Configuration> {
    const s = this.s
    let auth: oidc.ClientAuth
    if (s.clientAuth === 'private_key_jwt') {
      if (!s.clientKeyFile) throw new Problem(503, 'AUTH_SIGNIN_UNAVAILABLE', 'people.clientKeyFile is required for private_key_jwt')
      auth = oidc.PrivateKeyJwt(await privateKey(s.clientKeyFile))
    } else auth = oidc.ClientSecretBasic(s.clientSecret ?? undefined)
    const issuer = new URL(s.issuer)
    // A plain-http issuer is allowed only for a provider on this machine (development).
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname)
    const options = issuer.protocol === 'http:' && loopback ? { execute: [oidc.allowInsecureRequests] } : undefined
    const metadata = { redirect_uris: [s.redirectUrl], response_types: ['code'], ...(s.clientSecret && s.clientAuth === 'client_secret_basic' ? { client_secret: s.clientSecret } : {}) }
    try {
      const config = await oidc.discovery(issuer, s.clientId, metadata, auth, { ...options, timeout: 10 })
      config.timeout = 10
      return config
    } catch (e) {
      throw isRefusal(e) ? new Problem(503, 'AUTH_SIGNIN_UNAVAILABLE', `discovery at ${s.issuer} failed: ${(e as Error).message}`) : unavailable('discovery')
    }
  }

  /** The provider's configuration; a failed discovery is tried again on the next sign-in. */
  configuration(): Promise<oidc.Configuration> {
    if (!this.discovered) {
      this.discovered = this.discover()
      this.discovered.catch(() => (this.discovered = null))
    }
    return this.discovered
  }

  async start(): Promise<AuthorizationStart> {
    const config = await this.configuration()
    const codeVerifier = oidc.randomPKCECodeVerifier()
    const state = oidc.randomState()
    const nonce = oidc.randomNonce()
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.s.redirectUrl,
      scope: this.s.scopes,
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    return { url: url.href, state, nonce, codeVerifier }
  }

  /** The provider's answer at the callback (its query string) → the person's claims. */
  async finish(query: string, checks: { state: string; nonce: string; codeVerifier: string }, needUserinfo: (claims: Record<string, unknown>) => boolean): Promise<CodeAnswer> {
    const config = await this.configuration()
    const current = new URL(this.s.redirectUrl)
    current.search = query
    try {
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      })
      const idClaims = tokens.claims() as Record<string, unknown> | undefined
      if (!idClaims) throw new Problem(401, 'AUTH_SIGNIN_FAILED', 'the identity provider returned no ID token')
      let claims: Record<string, unknown> = { ...idClaims }
      if (needUserinfo(claims)) {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub as string)
        claims = { ...info, ...Object.fromEntries(Object.entries(idClaims).filter(([, v]) => v !== undefined)) }
      }
      return { claims, idToken: tokens.id_token }
    } catch (e) {
      if (e instanceof Problem) throw e
      if (isRefusal(e)) throw new Problem(401, 'AUTH_SIGNIN_FAILED', `the identity provider's answer was refused: ${(e as Error).message}`)
      throw unavailable('token or userinfo endpoint')
    }
  }

  /** Where the browser goes to end its session at the provider, if it offers RP-initiated logout. */
  async endSessionUrl(idToken: string | undefined): Promise<string | null> {
    let config: oidc.Configuration
    try {
      config = await this.configuration()
    } catch {
      return null
    }
    if (!config.serverMetadata().end_session_endpoint) return null
    return oidc.buildEndSessionUrl(config, {
      post_logout_redirect_uri: this.s.postLogoutRedirectUrl,
      client_id: this.s.clientId,
      ...(idToken ? { id_token_hint: idToken } : {}),
    }).href
  }
}
