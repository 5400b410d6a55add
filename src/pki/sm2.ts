// SM2 (GM/T 0003, SM3(Z ‖ M) with the default user id 1234567812345678) and SM3 for the whole
// gateway, the one place sm-crypto-v2 is loaded (docs/gm.md). The curve arithmetic is the
// library's (@noble/curves, native BigInt); Node's built-in SM2 signing is not the standard
// one (nodejs/node#53761). What is ours: input checks, so that nothing here throws on hostile
// input, and a bounded cache of precomputed public keys.
//
// Nonces and fresh keys are the library's: doSignature draws k through @noble/curves'
// randomSecretKey (48 bytes reduced mod n−1, plus 1) from sm-crypto-v2's rng, which uses
// globalThis.crypto.getRandomValues (Node's webcrypto CSPRNG) when globalThis.crypto exists,
// as it does on every Node ≥ 19. Checked once below: without it the library falls back to a
// pool filled asynchronously, and a signature made before the pool is ready would throw.
import * as crypto from 'node:crypto'
import { sm2 as lib, sm3 as libSm3 } from 'sm-crypto-v2'

if (typeof globalThis.crypto?.getRandomValues !== 'function') throw new Error('sm2: globalThis.crypto.getRandomValues is required (Node ≥ 20)')

/** The SM2 curve order n: private keys and r, s of a signature lie in [1, n−1]. */
export const SM2_N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n

const HEX_PRIVATE = /^[0-9a-f]{64}$/
const HEX_PUBLIC = /^04[0-9a-f]{128}$/
const HEX_SIGNATURE = /^[0-9a-f]{128}$/

const inRange = (hex: string) => {
  const v = BigInt(`0x${hex}`)
  return v >= 1n && v < SM2_N
}

/** A fresh key pair as hex: privateKey 64 digits, publicKey 04‖x‖y (130 digits). */
export function sm2KeyPair(): { privateKey: string; publicKey: string } {
  // No argument: with one, sm-crypto-v2 1.15 derives the key as seed mod 1 + 1, i.e. always 1.
  return lib.generateKeyPairHex()
}

/** The public key 04‖x‖y of a private scalar (64 hex digits in [1, n−1]); throws otherwise. */
export function sm2PublicKeyOf(privateKeyHex: string): string {
  return lib.getPublicKeyFromPrivateKey(sm2PrivateHex(privateKeyHex))
}

/** SM2 signature of `data`, raw r‖s as 128 hex digits; `publicKeyHex` saves deriving it. */
export function sm2Sign(data: Uint8Array, privateKeyHex: string, publicKeyHex?: string): string {
  const d = sm2PrivateHex(privateKeyHex)
  return lib.doSignature(data, d, { hash: true, publicKey: publicKeyHex ?? lib.getPublicKeyFromPrivateKey(d) })
}

/** True only for a valid raw r‖s signature (128 hex digits) under 04‖x‖y; any malformed input is false. */
export function sm2Verify(data: Uint8Array, rsHex: string, publicKeyHex: string): boolean {
  try {
    const rs = rsHex.toLowerCase()
    if (!HEX_SIGNATURE.test(rs) || !inRange(rs.slice(0, 64)) || !inRange(rs.slice(64))) return false
    const key = verifyingKey(publicKeyHex.trim().toLowerCase())
    return key !== null && lib.doVerifySignature(data, rs, key, { hash: true })
  } catch {
    return false
  }
}

/** A private scalar as 64 lower-case hex digits; throws unless it lies in [1, n−1]. */
export function sm2PrivateHex(key: string): string {
  const h = key.trim().toLowerCase()
  if (!HEX_PRIVATE.test(h) || !inRange(h)) throw new Error('sm2: private key must be 64 hex digits in [1, n-1]')
  return h
}

// --- Precomputed public keys. A node verifies the same few keys again and again (its
// clients' assertions, seal certificates, its own and its children's checkpoints): a key
// precomputed for a window of WINDOW bits verifies about 4x faster (bench/sm2.ts). The
// precomputation costs a few plain verifications and tens of KiB, so a key is precomputed
// the second time it is seen: a stream of new keys (anyone may present a certificate) costs
// a plain verification each and cannot fill memory. Both maps are LRUs (a Map keeps
// insertion order; a hit moves the key to the end).
type Point = ReturnType<typeof lib.precomputePublicKey>
const WINDOW = 4
const MAX_PRECOMPUTED = 256
const MAX_SEEN = 4096
const precomputed = new Map<string, Point>()
const seenOnce = new Set<string>()

/** The key to verify with: the precomputed point when the key is known, the hex the first time; null when it is not a point on the curve. */
function verifyingKey(publicKeyHex: string): Point | string | null {
  const hit = precomputed.get(publicKeyHex)
  if (hit) {
    precomputed.delete(publicKeyHex)
    precomputed.set(publicKeyHex, hit)
    return hit
  }
  if (!HEX_PUBLIC.test(publicKeyHex) || !lib.verifyPublicKey(publicKeyHex)) return null
  if (!seenOnce.delete(publicKeyHex)) {
    seenOnce.add(publicKeyHex)
    if (seenOnce.size > MAX_SEEN) seenOnce.delete(seenOnce.values().next().value!)
    return publicKeyHex
  }
  const point = lib.precomputePublicKey(publicKeyHex, WINDOW)
  precomputed.set(publicKeyHex, point)
  if (precomputed.size > MAX_PRECOMPUTED) precomputed.delete(precomputed.keys().next().value!)
  return point
}

/** How many keys are held precomputed (for tests and the benchmark). */
export const sm2PrecomputedKeys = (): number => precomputed.size

// --- SM3 (GB/T 32905): OpenSSL's where it has it (3.x does, ~30x faster than JavaScript),
// sm-crypto-v2's otherwise. crypto.hash (Node ≥ 20.12) hashes in one call.
type OneShot = (alg: string, data: Uint8Array | string, encoding: 'buffer') => Buffer
const oneShot = (crypto as unknown as { hash?: OneShot }).hash
const nativeSm3 = crypto.getHashes().includes('sm3')

/** SM3 of bytes (a string is hashed as its UTF-8 bytes). */
export function sm3(data: Uint8Array | string): Buffer {
  if (!nativeSm3) return Buffer.from(libSm3(typeof data === 'string' ? Buffer.from(data, 'utf8') : data), 'hex')
  return oneShot ? oneShot('sm3', data, 'buffer') : crypto.createHash('sm3').update(data).digest()
}
