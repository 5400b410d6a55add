// The two hand-written SM2 pieces against sm-crypto (the library): the gateway's fixed-base
// comb (src/pki/sm2-nonce.ts) gives the same k·G, and the SDK's BigInt SM2
// (packages/client/src/sm2.ts) verifies sm-crypto's signatures and makes signatures
// sm-crypto verifies; a changed message, key or signature byte fails both ways.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { baseMul, sm2NonceHex } from '../../src/pki/sm2-nonce.js'
import { createSigner, verifySignature, generateSm2KeyPair } from '../../src/pki/suites.js'
import { sm2PrivateKeyPem } from '../../src/pki/sm2-x509.js'
import { sm2Sign, sm2Verify, sm2PrivateScalar } from '../../packages/client/src/sm2.js'

const { sm2 } = createRequire(import.meta.url)('sm-crypto') as { sm2: { getPublicKeyFromPrivateKey(k: string): string } }
const N = 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n
const hex64 = (v: bigint) => v.toString(16).padStart(64, '0')

t.test('the comb: k·G as sm-crypto computes it, edge scalars included', async (t) => {
  const ks = [1n, 2n, 15n, 16n, 17n, N - 1n, N - 2n, ...Array.from({ length: 40 }, () => (BigInt(`0x${randomBytes(32).toString('hex')}`) % (N - 1n)) + 1n)]
  for (const k of ks) {
    const [x, y] = baseMul(k)
    t.equal(`04${hex64(x)}${hex64(y)}`, sm2.getPublicKeyFromPrivateKey(hex64(k)), `k = ${k.toString(16).slice(0, 12)}`)
  }
  const n = sm2NonceHex()
  t.equal(sm2.getPublicKeyFromPrivateKey(n.k.padStart(64, '0')).slice(2, 66), n.x1.padStart(64, '0'), 'the nonce x1 is x(k·G)')
})

t.test('SDK SM2 and sm-crypto sign and verify each other', async (t) => {
  for (let i = 0; i < 10; i++) {
    const kp = generateSm2KeyPair()
    const pem = sm2PrivateKeyPem(kp.privateKey, kp.publicKey)
    const msg = randomBytes(1 + i * 37)
    const gw = createSigner('SM2-SM3', pem).sign(msg)
    t.ok(sm2Verify(msg, gw, kp.publicKey), 'SDK verifies the gateway')
    const sdk = sm2Sign(msg, sm2PrivateScalar(pem)!)
    t.ok(verifySignature('SM2-SM3', kp.publicKey, msg, sdk), 'the gateway verifies the SDK')
    const bad = Buffer.from(sdk)
    bad[i % 64] ^= 1
    t.notOk(sm2Verify(msg, bad, kp.publicKey), 'a flipped byte')
    t.notOk(verifySignature('SM2-SM3', kp.publicKey, msg, bad), 'a flipped byte (gateway)')
    t.notOk(sm2Verify(Buffer.concat([msg, Buffer.from([0])]), gw, kp.publicKey), 'another message')
    t.notOk(sm2Verify(msg, gw, generateSm2KeyPair().publicKey), 'another key')
  }
  t.notOk(sm2Verify(Buffer.from('x'), Buffer.alloc(64), generateSm2KeyPair().publicKey), 'r = s = 0')
  t.notOk(sm2Verify(Buffer.from('x'), Buffer.alloc(63, 1), generateSm2KeyPair().publicKey), 'short signature')
  t.notOk(sm2Verify(Buffer.from('x'), Buffer.alloc(64, 1), `04${'1'.repeat(128)}`), 'a point off the curve')
})
