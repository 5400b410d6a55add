// Client side of private_key_jwt (RFC 7523): a departmental system signs a short-lived,
// single-use assertion with its own key to get an access token. JWS by node:crypto alone:
// RS256 (PKCS#1 v1.5), PS256 (PSS, salt = hash length, RFC 7518 §3.5), ES256 / ES384 (P-256 /
// P-384, the signature as r ‖ s, RFC 7518 §3.4); SM2SM3 for an SM2 key (sm2.ts: SM2 over
// SM3(Z ‖ M), user id 1234567812345678, the signature r ‖ s as ES256 writes it; the gateway's
// docs/gm.md).
import { createPrivateKey, randomUUID, sign, constants, type KeyObject } from 'node:crypto'
import { sm2PrivateScalar, sm2Sign } from './sm2.js'

export type AssertionAlgorithm = 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'SM2SM3'

export interface AssertionOptions {
  clientId: string
  keyPem: string
  /** The token endpoint URL (RFC 7523 §3); the node id is also accepted. */
  audience: string
  lifetimeSeconds?: number
  /** Default: RS256 for an RSA key, ES256 for a P-256 key, ES384 for a P-384 key. */
  algorithm?: AssertionAlgorithm
}

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url')

function algorithmFor(key: KeyObject, wanted: AssertionAlgorithm | undefined): AssertionAlgorithm {
  const type = key.asymmetricKeyType
  const curve = type === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined
  if (wanted === 'ES384' || (!wanted && curve === 'secp384r1')) {
    if (curve !== 'secp384r1') throw new TypeError('ES384 needs a P-384 (secp384r1) key')
    return 'ES384'
  }
  if (wanted === 'ES256' || (!wanted && type === 'ec')) {
    if (curve !== 'prime256v1') throw new TypeError('ES256 needs a P-256 (prime256v1) key')
    return 'ES256'
  }
  if (type !== 'rsa' && type !== 'rsa-pss') throw new TypeError(`a ${type} key cannot sign ${wanted ?? 'RS256'}: give an RSA, P-256 or P-384 key`)
  return wanted ?? 'RS256'
}

/** A signed JWT (compact JWS) over `claims` with header `{ alg, typ: 'JWT' }`. */
export function signJwt(claims: Record<string, unknown>, keyPem: string, algorithm?: AssertionAlgorithm): string {
  const d = sm2PrivateScalar(keyPem)
  if (d !== null || algorithm === 'SM2SM3') {
    if (d === null) throw new TypeError('SM2SM3 needs an SM2 key')
    if (algorithm && algorithm !== 'SM2SM3') throw new TypeError(`an SM2 key signs SM2SM3, not ${algorithm}`)
    const input = `${b64url({ alg: 'SM2SM3', typ: 'JWT' })}.${b64url(claims)}`
    return `${input}.${sm2Sign(Buffer.from(input, 'ascii'), d).toString('base64url')}`
  }
  const key = createPrivateKey(keyPem)
  const alg = algorithmFor(key, algorithm)
  const input = `${b64url({ alg, typ: 'JWT' })}.${b64url(claims)}`
  const signature =
    alg === 'ES256' || alg === 'ES384'
      ? sign(alg === 'ES256' ? 'sha256' : 'sha384', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
      : alg === 'PS256'
        ? sign('sha256', Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
        : sign('sha256', Buffer.from(input), key)
  return `${input}.${signature.toString('base64url')}`
}

export function signClientAssertion(o: AssertionOptions): string {
  const iat = Math.floor(Date.now() / 1000)
  return signJwt({ iss: o.clientId, sub: o.clientId, aud: o.audience, jti: randomUUID(), iat, exp: iat + (o.lifetimeSeconds ?? 60) }, o.keyPem, o.algorithm)
}
