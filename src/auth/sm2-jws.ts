// JWS with SM2 (docs/gm.md): alg "SM2SM3", the signature raw r‖s (64 bytes, as ES256 writes
// r‖s) over SM3(Z‖M) of the ASCII signing input, GM/T 0003 with the default user id
// 1234567812345678. No IANA-registered JOSE alg for SM2 exists; "SM2SM3" names both the
// signature and the hash, as "ES256" does. fast-jwt cannot verify it, so this module checks
// the signature and the same claims a fast-jwt verifier checks, and throws fast-jwt's
// TokenError codes so that the caller maps both alike.
import { TokenError } from 'fast-jwt'
import { verifySignature } from '../pki/suites.js'

export const SM2_JWS_ALG = 'SM2SM3'

export interface Sm2JwtVerifierOptions {
  publicKeyHex: string
  allowedIss: string
  allowedSub: string
  allowedAud: string[]
  clockTolerance: number
  now: () => number
}

const B64URL = /^[A-Za-z0-9_-]*$/
const MAX_JWT = 16 * 1024

export function sm2JwtVerifier(o: Sm2JwtVerifierOptions): (token: string) => Record<string, any> {
  return (token) => {
    if (typeof token !== 'string' || token.length > MAX_JWT) throw new TokenError(TokenError.codes.malformed, 'not a JWT')
    const parts = token.split('.')
    if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) throw new TokenError(TokenError.codes.malformed, 'not a JWS compact serialisation')
    let header: Record<string, unknown>
    let claims: Record<string, any>
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'))
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    } catch {
      throw new TokenError(TokenError.codes.malformed, 'header or payload is not JSON')
    }
    if (!isObject(header) || !isObject(claims)) throw new TokenError(TokenError.codes.malformed, 'header and payload must be objects')
    if (header.alg !== SM2_JWS_ALG) throw new TokenError(TokenError.codes.invalidAlgorithm, `an SM2 certificate signs ${SM2_JWS_ALG} only`)
    if (header.crit !== undefined) throw new TokenError(TokenError.codes.invalidAlgorithm, 'crit is not supported')
    const sig = Buffer.from(parts[2], 'base64url')
    if (!verifySignature('SM2-SM3', o.publicKeyHex, Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'), sig)) {
      throw new TokenError(TokenError.codes.invalidSignature, 'the SM2 signature does not verify')
    }
    for (const c of ['iss', 'sub', 'aud', 'iat', 'exp', 'jti']) {
      if (claims[c] === undefined) throw new TokenError(TokenError.codes.missingRequiredClaim, `the ${c} claim is required`)
    }
    const t = o.now()
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) throw new TokenError(TokenError.codes.invalidClaimType, 'exp must be a NumericDate')
    if (claims.exp * 1000 + o.clockTolerance <= t) throw new TokenError(TokenError.codes.expired, 'the token has expired')
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf * 1000 - o.clockTolerance > t)) {
      throw new TokenError(TokenError.codes.inactive, 'the token is not active yet')
    }
    if (typeof claims.iat === 'number' && claims.iat * 1000 - o.clockTolerance > t) throw new TokenError(TokenError.codes.inactive, 'iat is in the future')
    if (claims.iss !== o.allowedIss || claims.sub !== o.allowedSub) throw new TokenError(TokenError.codes.invalidClaimValue, 'iss and sub must be the client id')
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
    if (!aud.some((a) => typeof a === 'string' && o.allowedAud.includes(a))) throw new TokenError(TokenError.codes.invalidClaimValue, 'the aud claim is not the token endpoint')
    return claims
  }
}

const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v)
