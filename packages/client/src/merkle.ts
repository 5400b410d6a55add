// The verifier's side of the RFC 9162 (Certificate Transparency v2) Merkle tree: leaf and
// node hashes, and folding an inclusion path up to the root it implies. SHA-256 for evidence
// v1, SM3 (node:crypto's, from OpenSSL) for v2.
import { createHash } from 'node:crypto'

export type TreeHash = 'sha256' | 'sm3'

const H = (alg: TreeHash, data: Buffer | string): Buffer => createHash(alg).update(data).digest()
const sha256 = (data: Buffer | string): Buffer => H('sha256', data)
/** The hash as lower-case hex. */
export const hashHex = (alg: TreeHash, data: Buffer | string): string => createHash(alg).update(data).digest('hex')

/** SHA-256 as lower-case hex (a string is hashed as its UTF-8 bytes). */
export const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** H(0x00 ‖ data), H = SHA-256 unless told. */
export function leafHash(data: Buffer | string, alg: TreeHash = 'sha256'): Buffer {
  return H(alg, Buffer.concat([Buffer.from([0x00]), typeof data === 'string' ? Buffer.from(data, 'utf8') : data]))
}

/** H(0x01 ‖ left ‖ right). */
export function nodeHash(left: Buffer, right: Buffer, alg: TreeHash = 'sha256'): Buffer {
  return H(alg, Buffer.concat([Buffer.from([0x01]), left, right]))
}
void sha256

// Sizes and indices are shifted with 32-bit operators below.
const MAX_SIZE = 0xffffffff

/**
 * RFC 9162 §2.1.3.2: the root an inclusion path implies for a leaf at `index` of a tree of
 * `size`; null when the path cannot belong to such a tree.
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
