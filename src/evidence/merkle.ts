// RFC 9162 (Certificate Transparency v2) Merkle tree: unpadded, split at the largest power
// of two below the size. Built bottom-up once per batch; inclusion paths are read off the
// stored levels. The hash is SHA-256 (evidence v1) or SM3 (evidence v2, GB/T 32905).
import * as crypto from 'node:crypto'
import { sm3 } from '../pki/sm2.js'

/** The tree's and the digests' hash: SHA-256 for evidence v1, SM3 for v2. */
export type TreeHash = 'sha256' | 'sm3'

type OneShot = (alg: string, data: Buffer | string, encoding: 'hex' | 'buffer') => string | Buffer
// crypto.hash (Node ≥ 20.12) hashes in one call, about twice as fast as createHash for the
// short inputs hashed per record; older releases take the streaming path.
const oneShot = (crypto as unknown as { hash?: OneShot }).hash
const sha256 = (data: Buffer | string): Buffer =>
  oneShot ? (oneShot('sha256', data, 'buffer') as Buffer) : crypto.createHash('sha256').update(data).digest()
/** SHA-256 as lower-case hex. */
export const sha256Hex = (data: Buffer | string): string =>
  oneShot ? (oneShot('sha256', data, 'hex') as string) : crypto.createHash('sha256').update(data).digest('hex')

// SM3 from OpenSSL where it has it, sm-crypto-v2 otherwise (src/pki/sm2.ts).
/** SM3 as lower-case hex. */
export const sm3Hex = (data: Buffer | string): string => sm3(data).toString('hex')

const HASHES: Record<TreeHash, (data: Buffer | string) => Buffer> = { sha256, sm3 }
/** The hash as lower-case hex. */
export const hashHex = (alg: TreeHash, data: Buffer | string): string => (alg === 'sha256' ? sha256Hex(data) : sm3Hex(data))

const LEAF = Buffer.from([0x00])
const NODE = Buffer.from([0x01])
const EMPTY_ROOT = { sha256: sha256(''), sm3: sm3('') }
// Sizes and indices are shifted with 32-bit operators below.
const MAX_SIZE = 0xffffffff

/** H(0x00 ‖ data), H = SHA-256 unless told; a string is hashed as its UTF-8 bytes. */
export function leafHash(data: Buffer | string, alg: TreeHash = 'sha256'): Buffer {
  // U+0000 is the single byte 0x00 in UTF-8: prefixing the string is prefixing the bytes.
  return HASHES[alg](typeof data === 'string' ? `\u0000${data}` : Buffer.concat([LEAF, data]))
}

/** H(0x01 ‖ left ‖ right). */
export function nodeHash(left: Buffer, right: Buffer, alg: TreeHash = 'sha256'): Buffer {
  return HASHES[alg](Buffer.concat([NODE, left, right]))
}

export interface MerkleTree {
  root: Buffer
  size: number
  /** RFC 9162 §2.1.3.1 PATH, bottom-up. The buffers are the tree's own: do not mutate. */
  path(index: number): Buffer[]
  /** The same path as lower-case hex; each node is converted once per tree, not per path. */
  pathHex(index: number): string[]
}

/**
 * Builds the tree over leaf hashes. Pairing neighbours level by level and carrying an odd
 * last node up unchanged gives exactly the RFC 9162 tree: the carried node is the right
 * subtree that the power-of-two split leaves smaller.
 */
export function buildTree(leaves: Buffer[], alg: TreeHash = 'sha256'): MerkleTree {
  const size = leaves.length
  if (size > MAX_SIZE) throw new RangeError('merkle: too many leaves')
  const levels: Buffer[][] = [leaves]
  for (let level = leaves; level.length > 1; ) {
    const up: Buffer[] = new Array(Math.ceil(level.length / 2))
    for (let i = 0; i + 1 < level.length; i += 2) up[i >> 1] = nodeHash(level[i], level[i + 1], alg)
    if (level.length & 1) up[up.length - 1] = level[level.length - 1]
    levels.push(up)
    level = up
  }
  const root = size === 0 ? EMPTY_ROOT[alg] : levels[levels.length - 1][0]

  const walk = <T>(index: number, at: (l: number, i: number) => T): T[] => {
    if (!Number.isInteger(index) || index < 0 || index >= size) {
      throw new RangeError(`merkle: index ${index} out of range for size ${size}`)
    }
    const out: T[] = []
    // A node without a sibling was carried up and contributes nothing at that level.
    for (let l = 0, i = index; l < levels.length - 1; l++, i >>>= 1) {
      const sibling = i ^ 1
      if (sibling < levels[l].length) out.push(at(l, sibling))
    }
    return out
  }
  let hex: string[][] | null = null
  return {
    root,
    size,
    path: (index) => walk(index, (l, i) => levels[l][i]),
    pathHex(index) {
      hex ??= levels.map(() => [])
      const h = hex
      return walk(index, (l, i) => (h[l][i] ??= levels[l][i].toString('hex')))
    },
  }
}

/**
 * RFC 9162 §2.1.3.2: folds an inclusion path from a leaf hash up to the root it implies.
 * Returns null when the path cannot belong to a tree of that size at that index.
 */
export function rootFromPath(leaf: Buffer, index: number, size: number, path: Buffer[], alg: TreeHash = 'sha256'): Buffer | null {
  if (!Number.isInteger(index) || !Number.isInteger(size) || size > MAX_SIZE) return null
  if (index < 0 || index >= size) return null
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of path) {
    if (sn === 0) return null
    if (fn & 1 || fn === sn) {
      r = nodeHash(p, r, alg)
      // Skip the levels where this node was carried up without a sibling.
      while (!(fn & 1) && fn !== 0) {
        fn >>>= 1
        sn >>>= 1
      }
    } else {
      r = nodeHash(r, p, alg)
    }
    fn >>>= 1
    sn >>>= 1
  }
  return sn === 0 ? r : null
}
