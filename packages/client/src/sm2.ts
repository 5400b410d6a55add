// SM2 (GB/T 32918, GM/T 0003) for an SM2 node, without a dependency: verification of
// SM2-SM3 checkpoint signatures and of SM2-with-SM3 certificates, and signing of SM2SM3
// client assertions. Curve arithmetic in BigInt (Jacobian coordinates, a = −3); SM3 from
// node:crypto (OpenSSL 3, which every Node ≥ 18 bundles, has it). The user id is the
// default 1234567812345678. Not constant-time: a client that signs in a hostile shared host
// should keep its key in an HSM (docs/gm.md).
import { createHash, createPrivateKey, X509Certificate, randomBytes, getHashes } from 'node:crypto'
import { children, readDer, oid, TAG } from './der.js'

const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn
const A = P - 3n
const B = 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n
const GX = 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n
const GY = 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n
const USER_ID = Buffer.from('1234567812345678', 'ascii')
export const SM2_CURVE_OID = '1.2.156.10197.1.301'
const EC_PUBLIC_KEY_OID = '1.2.840.10045.2.1'

export const hasSm3 = (): boolean => getHashes().includes('sm3')
export function sm3(...parts: Buffer[]): Buffer {
  if (!hasSm3()) throw new Error("SM3 is not in this Node's OpenSSL: SM2 evidence cannot be verified here")
  const h = createHash('sm3')
  for (const p of parts) h.update(p)
  return h.digest()
}

type Jac = [bigint, bigint, bigint] // Z = 0: the point at infinity

const mod = (a: bigint, m = P) => {
  const r = a % m
  return r < 0n ? r + m : r
}
function inv(a: bigint, m = P): bigint {
  let [r0, r1] = [mod(a, m), m]
  let [s0, s1] = [1n, 0n]
  while (r1 !== 0n) {
    const q = r0 / r1
    ;[r0, r1] = [r1, r0 - q * r1]
    ;[s0, s1] = [s1, s0 - q * s1]
  }
  if (r0 !== 1n) throw new Error('sm2: not invertible')
  return mod(s0, m)
}

function double([x, y, z]: Jac): Jac {
  if (z === 0n || y === 0n) return [1n, 1n, 0n]
  const delta = mod(z * z)
  const gamma = mod(y * y)
  const beta = mod(x * gamma)
  const alpha = mod(3n * (x - delta) * (x + delta))
  const x3 = mod(alpha * alpha - 8n * beta)
  const z3 = mod((y + z) * (y + z) - gamma - delta)
  const y3 = mod(alpha * (4n * beta - x3) - 8n * gamma * gamma)
  return [x3, y3, z3]
}

function add(p: Jac, q: Jac): Jac {
  if (p[2] === 0n) return q
  if (q[2] === 0n) return p
  const z1z1 = mod(p[2] * p[2])
  const z2z2 = mod(q[2] * q[2])
  const u1 = mod(p[0] * z2z2)
  const u2 = mod(q[0] * z1z1)
  const s1 = mod(p[1] * q[2] * z2z2)
  const s2 = mod(q[1] * p[2] * z1z1)
  if (u1 === u2) return s1 === s2 ? double(p) : [1n, 1n, 0n]
  const h = mod(u2 - u1)
  const r = mod(s2 - s1)
  const hh = mod(h * h)
  const hhh = mod(h * hh)
  const x3 = mod(r * r - hhh - 2n * u1 * hh)
  const y3 = mod(r * (u1 * hh - x3) - s1 * hhh)
  return [x3, y3, mod(h * p[2] * q[2])]
}

/** a·G + b·Q (Shamir's trick). */
function twoMul(a: bigint, b: bigint, q: Jac): Jac {
  const g: Jac = [GX, GY, 1n]
  const gq = add(g, q)
  let r: Jac = [1n, 1n, 0n]
  for (let i = 256; i >= 0; i--) {
    r = double(r)
    const bitA = (a >> BigInt(i)) & 1n
    const bitB = (b >> BigInt(i)) & 1n
    if (bitA && bitB) r = add(r, gq)
    else if (bitA) r = add(r, g)
    else if (bitB) r = add(r, q)
  }
  return r
}

function affineX([x, , z]: Jac): bigint {
  const zi = inv(z)
  return mod(x * zi * zi)
}

const be32 = (v: bigint) => Buffer.from(v.toString(16).padStart(64, '0'), 'hex')

function onCurve(x: bigint, y: bigint): boolean {
  return x < P && y < P && mod(y * y - (x * x * x + A * x + B)) === 0n
}

function parsePublic(hex: string): [bigint, bigint] {
  const h = hex.replace(/^04/, '')
  if (!/^[0-9a-fA-F]{128}$/.test(h)) throw new Error('sm2: public key must be 04‖x‖y')
  const x = BigInt(`0x${h.slice(0, 64)}`)
  const y = BigInt(`0x${h.slice(64)}`)
  if (!onCurve(x, y)) throw new Error('sm2: the public key is not on the curve')
  return [x, y]
}

/** e = SM3(Z ‖ M), Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ Gx ‖ Gy ‖ Px ‖ Py). */
function digestFor(px: bigint, py: bigint, msg: Buffer): bigint {
  const entl = Buffer.from([(USER_ID.length * 8) >> 8, (USER_ID.length * 8) & 0xff])
  const z = sm3(entl, USER_ID, be32(A), be32(B), be32(GX), be32(GY), be32(px), be32(py))
  return BigInt(`0x${sm3(z, msg).toString('hex')}`)
}

/** True only when `sig` (raw r‖s, 64 bytes) is an SM2 signature of `msg` under `publicKeyHex`. */
export function sm2Verify(msg: Buffer, sig: Buffer, publicKeyHex: string): boolean {
  try {
    if (sig.length !== 64) return false
    const [px, py] = parsePublic(publicKeyHex)
    const r = BigInt(`0x${sig.subarray(0, 32).toString('hex')}`)
    const s = BigInt(`0x${sig.subarray(32).toString('hex')}`)
    if (r < 1n || r >= N || s < 1n || s >= N) return false
    const t = (r + s) % N
    if (t === 0n) return false
    const pt = twoMul(s, t, [px, py, 1n])
    if (pt[2] === 0n) return false
    return (digestFor(px, py, msg) + affineX(pt)) % N === r
  } catch {
    return false
  }
}

/** An SM2 signature (raw r‖s) of `msg` with the private scalar `d`. */
export function sm2Sign(msg: Buffer, d: bigint): Buffer {
  if (d < 1n || d >= N - 1n) throw new Error('sm2: bad private key')
  const pub = twoMul(d, 0n, [1n, 1n, 0n])
  const zi = inv(pub[2])
  const px = mod(pub[0] * zi * zi)
  const py = mod(pub[1] * zi * zi * zi)
  const e = digestFor(px, py, msg)
  for (;;) {
    // 320 random bits reduced mod n−1, plus 1: no usable bias.
    const k = (BigInt(`0x${randomBytes(40).toString('hex')}`) % (N - 1n)) + 1n
    const x1 = affineX(twoMul(k, 0n, [1n, 1n, 0n]))
    const r = (e + x1) % N
    if (r === 0n || r + k === N) continue
    const s = mod(inv(1n + d, N) * (k - r * d), N)
    if (s === 0n) continue
    return Buffer.concat([be32(r), be32(s)])
  }
}

/** The SM2 public key (04‖x‖y hex) of a certificate or public key; null when not on the SM2 curve. */
export function sm2PublicKeyOf(cert: X509Certificate): string | null {
  try {
    const spki = readDer(cert.publicKey.export({ type: 'spki', format: 'der' }))
    const [alg, bits] = children(spki)
    const [kind, curve] = children(alg)
    if (oid(kind) !== EC_PUBLIC_KEY_OID || curve?.tag !== TAG.OID || oid(curve) !== SM2_CURVE_OID) return null
    return bits.value.subarray(1).toString('hex')
  } catch {
    return null
  }
}

/** The private scalar of an SM2 key PEM (SEC1 "EC PRIVATE KEY" or PKCS#8); null when it is no SM2 key. */
export function sm2PrivateScalar(keyPem: string): bigint | null {
  try {
    // PKCS#8 export is safe for SM2 keys in Node 20 (SEC1 export is not).
    const der = readDer(createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' }))
    const [, alg, wrapped] = children(der)
    const [kind, curve] = children(alg)
    if (oid(kind) !== EC_PUBLIC_KEY_OID || curve?.tag !== TAG.OID || oid(curve) !== SM2_CURVE_OID) return null
    const [, d] = children(readDer(wrapped.value))
    return BigInt(`0x${d.value.toString('hex')}`)
  } catch {
    return null
  }
}

/** Whether `cert` carries a valid SM2-with-SM3 signature by the SM2 key `issuerPublicHex`. */
export function sm2CertificateSignedBy(cert: X509Certificate, issuerPublicHex: string): boolean {
  try {
    const [tbs, , sigBits] = children(readDer(cert.raw))
    const [r, s] = children(readDer(sigBits.value.subarray(1)))
    if (r.tag !== TAG.INTEGER || s.tag !== TAG.INTEGER) return false
    const int = (v: Buffer) => be32(BigInt(`0x${v.toString('hex') || '0'}`))
    return sm2Verify(tbs.raw, Buffer.concat([int(r.value), int(s.value)]), issuerPublicHex)
  } catch {
    return false
  }
}
