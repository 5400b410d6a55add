// "Was this certificate issued and signed by that one?" for RSA, EC and SM2 issuers alike.
// Node's OpenSSL reads SM2-with-SM3 certificates but does not verify their signatures the
// GM/T 0003 way (X509Certificate.verify is false for them), so an SM2 issuer's signature is
// checked with sm2-x509.ts (user id 1234567812345678, GM/T 0015). SM2 verification is JavaScript (ms each): results are remembered.
import type { X509Certificate } from 'node:crypto'
import { sm2PublicKeyHexOf } from './suites.js'
import { verifySm2CertificateSignature } from './sm2-x509.js'

const memo = new Map<string, boolean>()

export function isIssuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  if (!child.checkIssued(parent)) return false
  const key = `${child.fingerprint256}|${parent.fingerprint256}`
  let ok = memo.get(key)
  if (ok === undefined) {
    const sm2 = sm2PublicKeyHexOf(parent.toString())
    // OpenSSL's own check still counts for SM2: it verifies certificates `openssl x509` signed
    // without a distinguishing id (a signature under any id proves the issuer's key alike).
    ok = (sm2 !== null && verifySm2CertificateSignature(child.toString(), sm2)) || child.verify(parent.publicKey)
    if (memo.size >= 1024) memo.clear()
    memo.set(key, ok)
  }
  return ok
}
