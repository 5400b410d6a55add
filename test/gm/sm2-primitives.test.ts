// SM2 interoperability, the proof that moving to sm-crypto-v2 (src/pki/sm2.ts) changed no
// signature: sm-crypto 0.3 (the library the gateway used before, kept as a dev baseline) and
// the gateway verify each other's signatures; with the same nonce both make the same
// signature; the SDK's own BigInt SM2 (packages/client/src/sm2.ts) and the gateway verify each
// other. A changed message, key or signature byte fails every way, precomputed keys included,
// and malformed signatures or keys are false, never a throw.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { sm2 as v2 } from 'sm-crypto-v2'
import { SM2_N, sm2KeyPair, sm2PrecomputedKeys, sm2PublicKeyOf, sm2Sign, sm2Verify, sm3 } from '../../src/pki/sm2.js'
import { createSigner, verifySignature, generateSm2KeyPair } from '../../src/pki/suites.js'
import { sm2PrivateKeyPem } from '../../src/pki/sm2-x509.js'
import { sm2Sign as sdkSign, sm2Verify as sdkVerify, sm2PrivateScalar } from '../../packages/client/src/sm2.js'

const cjs = createRequire(import.meta.url)
interface OldSm2 {
  getPublicKeyFromPrivateKey(k: string): string
  doSignature(msg: number[], key: string, o: { hash: true; publicKey: string; pointPool?: object[] }): string
  doVerifySignature(msg: number[], sig: string, key: string, o: { hash: true }): boolean
}
const { sm2: old, sm3: oldSm3 } = cjs('sm-crypto') as { sm2: OldSm2; sm3(m: number[]): string }
const { BigInteger } = createRequire(cjs.resolve('sm-crypto'))('jsbn') as { BigInteger: new (hex: string, radix: 16) => object }
const hex64 = (v: bigint) => v.toString(16).padStart(64, '0')
const randomScalar = () => (BigInt(`0x${randomBytes(40).toString('hex')}`) % (SM2_N - 1n)) + 1n

t.test('sm-crypto and the gateway verify each other', async (t) => {
  for (let i = 0; i < 8; i++) {
    const { privateKey, publicKey } = sm2KeyPair()
    t.equal(old.getPublicKeyFromPrivateKey(privateKey), publicKey, 'the same public key')
    const msg = randomBytes(1 + i * 61)
    const byOld = old.doSignature(Array.from(msg), privateKey, { hash: true, publicKey })
    const byNew = sm2Sign(msg, privateKey, publicKey)
    t.ok(sm2Verify(msg, byOld, publicKey), 'the gateway verifies sm-crypto')
    t.ok(old.doVerifySignature(Array.from(msg), byNew, publicKey, { hash: true }), 'sm-crypto verifies the gateway')
    // Once more: the second sighting verifies with the precomputed key.
    t.ok(sm2Verify(msg, byOld, publicKey), 'again, precomputed')
    const edited = Buffer.concat([msg, Buffer.from([0])])
    t.notOk(sm2Verify(edited, byOld, publicKey), 'an edited message (precomputed key)')
    t.notOk(old.doVerifySignature(Array.from(edited), byNew, publicKey, { hash: true }), 'an edited message (sm-crypto)')
    const other = sm2KeyPair().publicKey
    t.notOk(sm2Verify(msg, byOld, other), 'another key')
    t.notOk(old.doVerifySignature(Array.from(msg), byNew, other, { hash: true }), 'another key (sm-crypto)')
    const flipped = (byNew.slice(0, i * 8) + (byNew[i * 8] === '0' ? '1' : '0') + byNew.slice(i * 8 + 1))
    t.notOk(sm2Verify(msg, flipped, publicKey), 'a changed signature digit')
  }
})

t.test('with the same nonce sm-crypto and sm-crypto-v2 make the same signature', async (t) => {
  for (let i = 0; i < 8; i++) {
    const { privateKey, publicKey } = sm2KeyPair()
    const msg = randomBytes(32 + i)
    const k = randomScalar()
    const x1 = old.getPublicKeyFromPrivateKey(hex64(k)).slice(2, 66)
    const byOld = old.doSignature(Array.from(msg), privateKey, {
      hash: true,
      publicKey,
      pointPool: [{ k: new BigInteger(hex64(k), 16), x1: new BigInteger(x1, 16) }],
    })
    const byNew = v2.doSignature(msg, privateKey, { hash: true, publicKey, pointPool: [{ k, x1: BigInt(`0x${x1}`) }] })
    t.equal(byNew, byOld, `k = ${hex64(k).slice(0, 12)}…`)
  }
})

t.test('nonces and keys are fresh', async (t) => {
  const { privateKey, publicKey } = sm2KeyPair()
  const msg = Buffer.from('the same message')
  const rs = new Set(Array.from({ length: 20 }, () => sm2Sign(msg, privateKey, publicKey).slice(0, 64)))
  t.equal(rs.size, 20, 'twenty signatures, twenty different r')
  const keys = new Set(Array.from({ length: 20 }, () => sm2KeyPair().privateKey))
  t.equal(keys.size, 20, 'twenty different private keys')
  t.notOk(keys.has(hex64(1n)), 'never the key 1 (sm-crypto-v2 gives it for a seeded generateKeyPairHex)')
  t.equal(sm2PublicKeyOf(privateKey), publicKey)
})

t.test('keys seen twice are held precomputed, bounded', async (t) => {
  const { privateKey, publicKey } = sm2KeyPair()
  const msg = Buffer.from('seen twice')
  const sig = sm2Sign(msg, privateKey, publicKey)
  const before = sm2PrecomputedKeys()
  t.ok(sm2Verify(msg, sig, publicKey), 'first: plain')
  t.equal(sm2PrecomputedKeys(), before, 'not precomputed on first sight')
  t.ok(sm2Verify(msg, sig, publicKey.toUpperCase().replace(/^04/, '04')), 'second (any case): precomputed')
  t.equal(sm2PrecomputedKeys(), Math.min(before + 1, 256), 'precomputed on the second sight')
  t.ok(sm2Verify(msg, sig, publicKey), 'third: from the cache')
  t.notOk(sm2Verify(Buffer.from('seen thrice'), sig, publicKey), 'the cached key still refuses another message')
  for (let i = 0; i < 300; i++) {
    const p = sm2KeyPair()
    const s = sm2Sign(msg, p.privateKey, p.publicKey)
    sm2Verify(msg, s, p.publicKey)
    sm2Verify(msg, s, p.publicKey)
  }
  t.equal(sm2PrecomputedKeys(), 256, 'at most 256 keys are held')
})

t.test('malformed signatures, keys and scalars', async (t) => {
  const { privateKey, publicKey } = sm2KeyPair()
  const msg = Buffer.from('x')
  const sig = sm2Sign(msg, privateKey, publicKey)
  const [r, s] = [sig.slice(0, 64), sig.slice(64)]
  const cases: [string, string, string][] = [
    ['r = s = 0', '0'.repeat(128), publicKey],
    ['r = 0', hex64(0n) + s, publicKey],
    ['s = 0', r + hex64(0n), publicKey],
    ['s = n', r + hex64(SM2_N), publicKey],
    ['s + n', r + (BigInt(`0x${s}`) + SM2_N).toString(16).slice(-64), publicKey],
    ['r = n', hex64(SM2_N) + s, publicKey],
    ['all f', 'f'.repeat(128), publicKey],
    ['short', sig.slice(0, 126), publicKey],
    ['long', `${sig}00`, publicKey],
    ['not hex', `${sig.slice(0, 126)}zz`, publicKey],
    ['empty', '', publicKey],
    ['a point off the curve', sig, `04${'1'.repeat(128)}`],
    ['a compressed point', sig, `02${publicKey.slice(2, 66)}`],
    ['no 04', sig, publicKey.slice(2)],
    ['x ≥ p', sig, `04${'f'.repeat(128)}`],
    ['the point at infinity', sig, '00'],
    ['not hex (key)', sig, `04${'g'.repeat(128)}`],
  ]
  for (const [name, sg, key] of cases) t.equal(sm2Verify(msg, sg, key), false, name)
  t.equal(sm2Verify(msg, sig, publicKey), true, 'the real one still verifies')
  t.equal(verifySignature('SM2-SM3', publicKey, msg, Buffer.alloc(64, 0xff)), false, 'suites: all-ones r‖s')
  for (const bad of ['0'.repeat(64), hex64(SM2_N), 'zz', '']) {
    t.throws(() => sm2Sign(msg, bad), /private key must be/, `sign refuses the private key ${bad.slice(0, 8) || 'empty'}`)
    t.throws(() => sm2PublicKeyOf(bad), /private key must be/)
  }
})

t.test('SM3: OpenSSL (or sm-crypto-v2) agrees with sm-crypto', async (t) => {
  t.equal(sm3('abc').toString('hex'), '66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0', 'GB/T 32905 example 1')
  for (const n of [0, 1, 55, 56, 64, 1000]) {
    const m = randomBytes(n)
    t.equal(sm3(m).toString('hex'), oldSm3(Array.from(m)), `${n} bytes`)
  }
})

t.test('SDK SM2 and the gateway sign and verify each other', async (t) => {
  for (let i = 0; i < 10; i++) {
    const kp = generateSm2KeyPair()
    const pem = sm2PrivateKeyPem(kp.privateKey, kp.publicKey)
    const msg = randomBytes(1 + i * 37)
    const gw = createSigner('SM2-SM3', pem).sign(msg)
    t.ok(sdkVerify(msg, gw, kp.publicKey), 'SDK verifies the gateway')
    const sdk = sdkSign(msg, sm2PrivateScalar(pem)!)
    t.ok(verifySignature('SM2-SM3', kp.publicKey, msg, sdk), 'the gateway verifies the SDK')
    const bad = Buffer.from(sdk)
    bad[i % 64] ^= 1
    t.notOk(sdkVerify(msg, bad, kp.publicKey), 'a flipped byte')
    t.notOk(verifySignature('SM2-SM3', kp.publicKey, msg, bad), 'a flipped byte (gateway)')
    t.notOk(sdkVerify(Buffer.concat([msg, Buffer.from([0])]), gw, kp.publicKey), 'another message')
    t.notOk(sdkVerify(msg, gw, generateSm2KeyPair().publicKey), 'another key')
  }
  t.notOk(sdkVerify(Buffer.from('x'), Buffer.alloc(64), generateSm2KeyPair().publicKey), 'r = s = 0')
  t.notOk(sdkVerify(Buffer.from('x'), Buffer.alloc(63, 1), generateSm2KeyPair().publicKey), 'short signature')
  t.notOk(sdkVerify(Buffer.from('x'), Buffer.alloc(64, 1), `04${'1'.repeat(128)}`), 'a point off the curve')
})
