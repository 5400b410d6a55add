// The per-signature SM2 nonce point k·G, fast. sm-crypto computes k·G with jsbn (~20 ms of
// JavaScript per signature, as much as the rest of an audit batch); sm-crypto still does the
// signature itself (doSignature's pointPool takes k and x1). Only this fixed-base scalar
// multiplication is ours: BigInt, a 4-bit comb over G precomputed once (64 × 15 affine
// points), so k·G is 64 mixed additions and one inversion (well under a millisecond).
// Not constant-time, like sm-crypto itself: BigInt has no constant-time arithmetic.
import { randomBytes } from 'node:crypto'

const P = 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n
const GX = 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n
const GY = 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n

type Jac = [bigint, bigint, bigint]
type Aff = [bigint, bigint]

const mod = (a: bigint) => {
  const r = a % P
  return r < 0n ? r + P : r
}
function inv(a: bigint): bigint {
  let [r0, r1] = [mod(a), P]
  let [s0, s1] = [1n, 0n]
  while (r1 !== 0n) {
    const q = r0 / r1
    ;[r0, r1] = [r1, r0 - q * r1]
    ;[s0, s1] = [s1, s0 - q * s1]
  }
  return mod(s0)
}

// a = −3: dbl-2001-b.
function double([x, y, z]: Jac): Jac {
  if (z === 0n || y === 0n) return [1n, 1n, 0n]
  const delta = mod(z * z)
  const gamma = mod(y * y)
  const beta = mod(x * gamma)
  const alpha = mod(3n * (x - delta) * (x + delta))
  const x3 = mod(alpha * alpha - 8n * beta)
  return [x3, mod(alpha * (4n * beta - x3) - 8n * gamma * gamma), mod((y + z) * (y + z) - gamma - delta)]
}

/** Jacobian + affine (madd-2007-bl with Z2 = 1). */
function addAffine(p: Jac, [qx, qy]: Aff): Jac {
  if (p[2] === 0n) return [qx, qy, 1n]
  const z1z1 = mod(p[2] * p[2])
  const u2 = mod(qx * z1z1)
  const s2 = mod(qy * p[2] * z1z1)
  if (u2 === p[0]) return s2 === p[1] ? double(p) : [1n, 1n, 0n]
  const h = mod(u2 - p[0])
  const r = mod(s2 - p[1])
  const hh = mod(h * h)
  const hhh = mod(h * hh)
  const v = mod(p[0] * hh)
  const x3 = mod(r * r - hhh - 2n * v)
  return [x3, mod(r * (v - x3) - p[1] * hhh), mod(p[2] * h)]
}

const toAffine = ([x, y, z]: Jac): Aff => {
  const zi = inv(z)
  const zi2 = mod(zi * zi)
  return [mod(x * zi2), mod(y * zi2 * zi)]
}

// TABLE[i][j - 1] = j · 16^i · G.
let TABLE: Aff[][] | null = null
function table(): Aff[][] {
  if (TABLE) return TABLE
  const t: Aff[][] = []
  let base: Aff = [GX, GY]
  for (let i = 0; i < 64; i++) {
    const row: Aff[] = [base]
    let acc: Jac = [base[0], base[1], 1n]
    for (let j = 2; j <= 16; j++) {
      acc = addAffine(acc, base)
      const a = toAffine(acc)
      if (j < 16) row.push(a)
      else base = a
    }
    t.push(row)
  }
  return (TABLE = t)
}

/** k·G as affine coordinates, for 0 < k < n. */
export function baseMul(k: bigint): Aff {
  const t = table()
  let r: Jac = [1n, 1n, 0n]
  for (let i = 0; i < 64; i++) {
    const nibble = Number((k >> BigInt(4 * i)) & 15n)
    if (nibble) r = addAffine(r, t[i][nibble - 1])
  }
  return toAffine(r)
}

/** A nonce k (320 random bits reduced mod n−1, plus 1: no usable bias) and x1 of k·G, as hex. */
export function sm2NonceHex(): { k: string; x1: string } {
  const k = (BigInt(`0x${randomBytes(40).toString('hex')}`) % (N - 1n)) + 1n
  return { k: k.toString(16), x1: baseMul(k)[0].toString(16) }
}
