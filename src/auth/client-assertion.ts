// RFC 7523 private_key_jwt: the client proves itself with a JWT signed by the key of its
// registered certificate. Each assertion is good for one token: its jti is remembered in
// Redis until it expires, and one issued before the replay memory began is refused
// (replay-store.ts: a Redis restart without persistence forgets every jti).
// A client whose certificate is SM2 signs with JOSE alg "SM2SM3" (docs/gm.md), which fast-jwt
// does not know: that one alg is verified by sm2-jws.ts, every other by fast-jwt.
import { createDecoder, createVerifier, TokenError } from 'fast-jwt'
import type { KeyObject, X509Certificate } from 'node:crypto'
import { isIssuedBy } from '../pki/issued.js'
import { sm2PublicKeyHexOf } from '../pki/suites.js'
import { sm2JwtVerifier } from './sm2-jws.js'
import { Problem, isProblem, type ProblemCode } from '../problems/problem.js'
import type { RegisteredSystem, SystemRegistry } from './systems.js'
import type { ReplayStore } from './replay-store.js'

export interface AssertionCheckOptions {
  registry: SystemRegistry
  replay: ReplayStore
  /** Trusted CAs: a registered certificate must be issued by one (the RSA CA, and an SM2 node's SM2 CA). */
  cas: X509Certificate[]
  audiences: string[]
  maxLifetimeSeconds: number
  now?: () => number
}

const CLOCK_SKEW_MS = 30_000

/**
 * The JWS algorithms a registered key may sign assertions with: fixed by the key, never by
 * the assertion's header (no algorithm confusion). RSA: RS256 or PS256; EC: the ES algorithm
 * of its curve (ES256 on P-256, ES384 on P-384, RFC 7518 §3.4); any other key: none.
 */
export function assertionAlgorithms(key: KeyObject): Array<'RS256' | 'PS256' | 'ES256' | 'ES384'> {
  if (key.asymmetricKeyType === 'rsa') return ['RS256', 'PS256']
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve
    if (curve === 'prime256v1') return ['ES256']
    if (curve === 'secp384r1') return ['ES384']
  }
  return []
}
const decode = createDecoder()
const unauthorized = (code: ProblemCode, detail: string) =>
  new Problem(401, code, detail, { error: 'invalid_client' })

export function clientAssertionChecker(opts: AssertionCheckOptions) {
  const now = opts.now ?? Date.now
  // One verifier per client and certificate: building it parses the key.
  const verifiers = new Map<string, { pem: string; verify: (t: string) => Record<string, any> }>()

  const verifierFor = (s: RegisteredSystem) => {
    let v = verifiers.get(s.clientId)
    if (!v || v.pem !== s.certPem) {
      const sm2 = sm2PublicKeyHexOf(s.certPem)
      // An SM2 certificate verifies SM2SM3 only; others never do (and fast-jwt refuses the alg).
      const algorithms = sm2 ? [] : assertionAlgorithms(s.cert.publicKey)
      if (!sm2 && !algorithms.length) throw unauthorized('AUTH_ASSERTION_BAD_SIGNATURE', 'the registered certificate holds a key that cannot sign client assertions')
      const verify = sm2 ? sm2JwtVerifier({ publicKeyHex: sm2, allowedIss: s.clientId, allowedSub: s.clientId, allowedAud: opts.audiences, clockTolerance: CLOCK_SKEW_MS, now }) : createVerifier({
        key: s.cert.publicKey.export({ type: 'spki', format: 'pem' }) as string,
        algorithms,
        allowedIss: s.clientId,
        allowedSub: s.clientId,
        allowedAud: opts.audiences,
        // iat is optional in RFC 7523, required here: the replay check needs to know whether
        // the assertion predates the replay store's epoch.
        requiredClaims: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti'],
        clockTolerance: CLOCK_SKEW_MS,
      }) as (t: string) => Record<string, any>
      v = { pem: s.certPem, verify }
      verifiers.set(s.clientId, v)
    }
    return v.verify
  }

  /** `verified` is told the system as soon as the signature holds (before the replay check),
   *  so that a refused replay is audited under the client that sent it. */
  return async function checkClientAssertion(assertion: string, verified?: (s: RegisteredSystem) => void): Promise<RegisteredSystem> {
    let iss: unknown
    try {
      iss = (decode(assertion) as Record<string, unknown>).iss
    } catch {
      throw unauthorized('AUTH_ASSERTION_MALFORMED', 'client_assertion is not a JWT')
    }
    if (typeof iss !== 'string') throw unauthorized('AUTH_ASSERTION_INVALID', 'client_assertion has no iss')
    const system = opts.registry.get(iss)
    if (!system) throw unauthorized('AUTH_UNKNOWN_CLIENT', 'no system is registered under this client id')
    if (system.status !== 'active') throw unauthorized('AUTH_CLIENT_SUSPENDED', 'this system is suspended')
    if (system.certRevoked) throw unauthorized('AUTH_CLIENT_CERT_REVOKED', 'the registered certificate of this system has been revoked')

    const t = now()
    if (Date.parse(system.cert.validTo) < t || Date.parse(system.cert.validFrom) > t) {
      throw unauthorized('AUTH_CLIENT_CERT_EXPIRED', 'the registered certificate is not valid now')
    }
    if (!opts.cas.some((ca) => isIssuedBy(system.cert, ca))) {
      throw unauthorized('AUTH_CLIENT_CERT_UNTRUSTED', 'the registered certificate is not issued by the trusted CA')
    }

    let claims: Record<string, any>
    try {
      claims = verifierFor(system)(assertion)
    } catch (e) {
      throw mapTokenError(e)
    }
    verified?.(system)
    if (claims.exp * 1000 - t > opts.maxLifetimeSeconds * 1000 + CLOCK_SKEW_MS) {
      throw unauthorized('AUTH_ASSERTION_LIFETIME', `client_assertion must expire within ${opts.maxLifetimeSeconds} s`)
    }
    if (typeof claims.iat !== 'number') throw unauthorized('AUTH_ASSERTION_INVALID', 'iat must be a NumericDate')
    if (typeof claims.jti !== 'string' || claims.jti.length < 8 || claims.jti.length > 128) {
      throw unauthorized('AUTH_ASSERTION_INVALID', 'jti must be a string of 8 to 128 characters')
    }
    await rememberJti(opts.replay, `jti:${system.clientId}:${claims.jti}`, claims.iat * 1000, claims.exp * 1000 - t + CLOCK_SKEW_MS)
    return system
  }
}

async function rememberJti(replay: ReplayStore, key: string, issuedAt: number, ttlMs: number): Promise<void> {
  let verdict
  try {
    verdict = await replay.claim(key, issuedAt, ttlMs)
  } catch {
    // Without the replay check an assertion could be used twice: fail closed.
    throw new Problem(503, 'REPLAY_CHECK_UNAVAILABLE', 'the replay store (Redis) is unavailable')
  }
  if (verdict === 'replayed') throw unauthorized('AUTH_ASSERTION_REPLAYED', 'this client_assertion (jti) was already used')
  if (verdict === 'before-epoch') {
    throw unauthorized('AUTH_ASSERTION_BEFORE_REPLAY_WINDOW', 'client_assertion was issued before the replay store began (it restarted): sign a fresh one')
  }
}

function mapTokenError(e: unknown): Problem {
  if (isProblem(e)) return e
  if (!(e instanceof TokenError)) return unauthorized('AUTH_ASSERTION_INVALID', 'client_assertion is invalid')
  switch (e.code) {
    case TokenError.codes.expired:
      return unauthorized('AUTH_ASSERTION_EXPIRED', 'client_assertion has expired')
    case TokenError.codes.inactive:
      return unauthorized('AUTH_ASSERTION_INVALID', 'client_assertion is not valid yet')
    case TokenError.codes.invalidSignature:
    case TokenError.codes.invalidAlgorithm:
      return unauthorized('AUTH_ASSERTION_BAD_SIGNATURE', 'client_assertion is not signed by the registered key')
    case TokenError.codes.invalidClaimValue:
      if (/\baud\b/.test(e.message)) {
        return unauthorized('AUTH_ASSERTION_WRONG_AUDIENCE', 'client_assertion aud must be the token endpoint URL')
      }
      return unauthorized('AUTH_ASSERTION_INVALID', 'client_assertion iss and sub must both be the client id')
    case TokenError.codes.missingRequiredClaim:
      return unauthorized('AUTH_ASSERTION_INVALID', 'client_assertion lacks iss, sub, aud, iat, exp or jti')
    default:
      return unauthorized('AUTH_ASSERTION_MALFORMED', 'client_assertion is malformed')
  }
}
