// sm-crypto, loaded once for the SM2 signers and verifiers of src/pki (Node's built-in SM2
// signing is not the standard one, nodejs/node#53761), with the nonces it must be given.
import { createRequire } from 'node:module'
import { sm2NonceHex } from './sm2-nonce.js'

export interface Sm2 {
  generateKeyPairHex(seedHex: string, radix: 16): { privateKey: string; publicKey: string }
  getPublicKeyFromPrivateKey(privateKey: string): string
  doSignature(msg: number[], privateKey: string, opts: { hash: true; publicKey: string; pointPool: object[] }): string
  doVerifySignature(msg: number[], sigHex: string, publicKey: string, opts: { hash: true }): boolean
}

const cjs = createRequire(import.meta.url)
export const { sm2 } = cjs('sm-crypto') as { sm2: Sm2 }
// The jsbn that sm-crypto itself loads: nonces must be instances of the class it computes with.
const { BigInteger } = createRequire(cjs.resolve('sm-crypto'))('jsbn') as {
  BigInteger: new (hex: string, radix: 16) => object
}

// sm-crypto draws nonces from jsbn's SecureRandom, which outside a browser is seeded from
// Math.random; a predictable nonce gives the private key away. So every signature gets a
// nonce from node:crypto through doSignature's pointPool: 320 random bits reduced mod n-1
// (as FIPS 186-4 B.5.1 does) leave no usable bias. Its point k·G comes from sm2-nonce.ts
// (a precomputed comb, ~30x faster than sm-crypto's own multiplication).
export function sm2Nonce(): object {
  const { k, x1 } = sm2NonceHex()
  return { k: new BigInteger(k, 16), x1: new BigInteger(x1, 16) }
}
