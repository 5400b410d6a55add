// The verifier's side of the RFC 9162 (Certificate Transparency v2) Merkle tree: leaf and
// node hashes, and folding an inclusion path up to the root it implies.
import { createHash } from 'node:crypto'

const sha256 = (data: Buffer | string): Buffer => createHash('sha256').update(data).digest()

/** SHA-256 as lower-case hex (a string is hashed as its UTF-8 bytes). */
export const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** SHA-256(0x00 ‖ data). */
export function leafHash(data: Buffer | string): Buffer {
  return sha256(Buffer.concat([Buffer.from([0x00]), typeof data === 'string' ? Buffer.from(data, 'utf8') : data]))
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return sha256(Buffer.concat([Buffer.from([0x01]), left, right]))
}

// Sizes and indices are shifted with 32-bit operators below.
const MAX_SIZE = 0xffffffff

/**
 * RFC 9162 §2.1.3.2: the root an inclusion path implies for a leaf at `index` of a tree of
 * `size`; null when the path cannot belong to such a tree.
 */
export function rootFromPath(leaf: Buffer, index: number, size: number, path: Buffer[]): Buffer | null {
  if (!Number.isInteger(index) || !Number.isInteger(size) || size > MAX_SIZE) return null
  if (index < 0 || index >= size) return null
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of path) {
    if (sn === 0) return null
    if (fn & 1 || fn === sn) {
      r = nodeHash(p, r)
      // Skip the levels where this node was carried up without a sibling.
      while (!(fn & 1) && fn !== 0) {
        fn >>>= 1
        sn >>>= 1
      }
    } else {
      r = nodeHash(r, p)
    }
    fn >>>= 1
    sn >>>= 1
  }
  return sn === 0 ? r : null
}
