import t from 'tap'
import { createHash } from 'node:crypto'
import { buildTree, leafHash, nodeHash, rootFromPath } from '../../src/evidence/merkle.js'

const hex = (b: Buffer) => b.toString('hex')

// RFC 9162 §2.1.1 MTH and §2.1.3.1 PATH, written literally from the recursive definitions.
function largestPowerOfTwoBelow(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return createHash('sha256').digest()
  if (d.length === 1) return d[0]
  const k = largestPowerOfTwoBelow(d.length)
  return nodeHash(mth(d.slice(0, k)), mth(d.slice(k)))
}

function refPath(m: number, d: Buffer[]): Buffer[] {
  if (d.length === 1) return []
  const k = largestPowerOfTwoBelow(d.length)
  return m < k ? [...refPath(m, d.slice(0, k)), mth(d.slice(k))] : [...refPath(m - k, d.slice(k)), mth(d.slice(0, k))]
}

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => leafHash(`leaf ${i}`))

t.test('hash prefixes', async (t) => {
  t.equal(hex(leafHash(Buffer.alloc(0))), createHash('sha256').update(Buffer.from([0])).digest('hex'))
  t.equal(hex(leafHash('é')), hex(leafHash(Buffer.from('é', 'utf8'))), 'strings hash as UTF-8')
  const l = Buffer.alloc(32, 1)
  const r = Buffer.alloc(32, 2)
  t.equal(hex(nodeHash(l, r)), createHash('sha256').update(Buffer.concat([Buffer.from([1]), l, r])).digest('hex'))
})

t.test('Certificate Transparency reference roots and proofs', async (t) => {
  const data = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f']
  const roots = [
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ]
  const leaves = data.map((h) => leafHash(Buffer.from(h, 'hex')))
  for (let n = 0; n <= 8; n++) t.equal(hex(buildTree(leaves.slice(0, n)).root), roots[n], `size ${n}`)
  const tree = buildTree(leaves)
  t.same(tree.path(0).map(hex), [
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
  ])
  t.same(tree.path(5).map(hex), [
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  ])
})

t.test('root and every path equal the RFC 9162 definitions for sizes 1..70', async (t) => {
  let checked = 0
  for (let n = 1; n <= 70; n++) {
    const leaves = leavesOf(n)
    const tree = buildTree(leaves)
    const root = mth(leaves)
    if (!tree.root.equals(root) || tree.size !== n) t.fail(`size ${n}: root`)
    for (let m = 0; m < n; m++) {
      const path = tree.path(m)
      const ref = refPath(m, leaves)
      if (path.length !== ref.length || !path.every((p, i) => p.equals(ref[i]))) t.fail(`size ${n} index ${m}: path`)
      const folded = rootFromPath(leaves[m], m, n, path)
      if (!folded || !folded.equals(root)) t.fail(`size ${n} index ${m}: verification`)
      checked++
    }
  }
  t.equal(checked, (70 * 71) / 2, 'every (size, index) pair checked')
})

// (A path may also fold to the root under a larger size, e.g. index 0 of 3 and of 4: the
// size is bound by the signed checkpoint, not by the path.)
t.test('rootFromPath rejects inconsistent proofs', async (t) => {
  for (const n of [1, 2, 3, 5, 8, 13, 33]) {
    const leaves = leavesOf(n)
    const tree = buildTree(leaves)
    for (let m = 0; m < n; m++) {
      const path = tree.path(m)
      const ok = (leaf: Buffer, i: number, size: number, p: Buffer[]) => {
        const r = rootFromPath(leaf, i, size, p)
        return r !== null && r.equals(tree.root)
      }
      t.notOk(ok(leaves[m], m, n, [...path, tree.root]), `size ${n} index ${m}: path too long`)
      if (path.length > 0) t.notOk(ok(leaves[m], m, n, path.slice(1)), `size ${n} index ${m}: path too short`)
      t.notOk(ok(leafHash('other'), m, n, path), `size ${n} index ${m}: wrong leaf`)
      for (let other = 0; other < n; other++) {
        if (other !== m && ok(leaves[m], other, n, path)) t.fail(`size ${n}: index ${m} path accepted at ${other}`)
      }
      for (let i = 0; i < path.length; i++) {
        const bad = path.slice()
        bad[i] = Buffer.from(bad[i])
        bad[i][0] ^= 1
        if (ok(leaves[m], m, n, bad)) t.fail(`size ${n} index ${m}: changed path element ${i} accepted`)
      }
    }
  }
  const leaf = leafHash('x')
  t.equal(rootFromPath(leaf, 0, 0, []), null, 'empty tree')
  t.equal(rootFromPath(leaf, 1, 1, []), null, 'index = size')
  t.equal(rootFromPath(leaf, -1, 1, []), null, 'negative index')
  t.equal(rootFromPath(leaf, 0.5, 2, []), null, 'fractional index')
  t.equal(rootFromPath(leaf, 0, 2 ** 40, []), null, 'size beyond 32 bits')
  t.ok(rootFromPath(leaf, 0, 1, [])?.equals(leaf), 'one-leaf tree: the leaf is the root')
})

t.test('path() refuses indices outside the tree', async (t) => {
  const tree = buildTree(leavesOf(3))
  t.throws(() => tree.path(3), RangeError)
  t.throws(() => tree.path(-1), RangeError)
  t.throws(() => buildTree([]).path(0), RangeError)
})
