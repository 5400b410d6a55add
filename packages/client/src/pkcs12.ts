// Reads a PKCS#12 file (RFC 7292) with node:crypto only: the MAC is checked (so a wrong
// password says so), the private key comes out of its (shrouded) key bag through
// createPrivateKey, and the certificates out of their bags, decrypted when the file
// encrypts them: PBES2 (PBKDF2 + AES-CBC or 3DES, what OpenSSL 3 and most CAs write) or
// the PKCS#12 PBE with 3DES (older tools). RC2 (OpenSSL's old "-legacy" default for
// certificates) works only where this Node's OpenSSL still offers it.
import { createDecipheriv, createHash, createHmac, createPrivateKey, pbkdf2Sync, timingSafeEqual, X509Certificate, type KeyObject } from 'node:crypto'
import { children, expect, integer, octets, oid, readDer, TAG, type Der } from './der.js'

export interface Pkcs12Contents {
  key: KeyObject
  /** Every certificate in the file, in file order. */
  certificates: X509Certificate[]
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  pbeSha1TripleDes: '1.2.840.113549.1.12.1.3',
  pbeSha1Rc2_128: '1.2.840.113549.1.12.1.5',
  pbeSha1Rc2_40: '1.2.840.113549.1.12.1.6',
}
const HMAC_PRF: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
}
const CIPHERS: Record<string, string> = {
  '2.16.840.1.101.3.4.1.2': 'aes-128-cbc',
  '2.16.840.1.101.3.4.1.22': 'aes-192-cbc',
  '2.16.840.1.101.3.4.1.42': 'aes-256-cbc',
  '1.2.840.113549.3.7': 'des-ede3-cbc',
}
const DIGESTS: Record<string, { name: string; u: number; v: number }> = {
  '1.3.14.3.2.26': { name: 'sha1', u: 20, v: 64 },
  '2.16.840.1.101.3.4.2.1': { name: 'sha256', u: 32, v: 64 },
  '2.16.840.1.101.3.4.2.2': { name: 'sha384', u: 48, v: 128 },
  '2.16.840.1.101.3.4.2.3': { name: 'sha512', u: 64, v: 128 },
}

/**
 * The password bytes PBES2 may have used: UTF-8 as RFC 8018 and OpenSSL do, then the
 * string's low bytes as node-forge writes them (differs only beyond ASCII).
 */
const pbes2Passwords = (password: string): Buffer[] => {
  const utf8 = Buffer.from(password, 'utf8')
  const latin1 = Buffer.from(password, 'latin1')
  return utf8.equals(latin1) ? [utf8] : [utf8, latin1]
}

/** The password as PKCS#12's KDF takes it: UTF-16 big-endian with a terminating NUL. */
const bmp = (password: string): Buffer => {
  const le = Buffer.from(`${password}\u0000`, 'utf16le')
  return le.swap16()
}

/** RFC 7292 Appendix B.2: key (id 1), IV (id 2) or MAC key (id 3) from password and salt. */
export function pkcs12Kdf(password: string, salt: Buffer, id: 1 | 2 | 3, iterations: number, n: number, digest = DIGESTS['1.3.14.3.2.26']): Buffer {
  const { name, u, v } = digest
  const stretch = (b: Buffer) => {
    const out = Buffer.alloc(b.length ? v * Math.ceil(b.length / v) : 0)
    for (let i = 0; i < out.length; i++) out[i] = b[i % b.length]
    return out
  }
  const D = Buffer.alloc(v, id)
  const I = Buffer.concat([stretch(salt), stretch(bmp(password))])
  const out: Buffer[] = []
  for (let got = 0; ; ) {
    let A = createHash(name).update(D).update(I).digest()
    for (let i = 1; i < iterations; i++) A = createHash(name).update(A).digest()
    out.push(A)
    got += u
    if (got >= n) break
    const B = stretch(A)
    for (let j = 0; j < I.length; j += v) {
      let carry = 1
      for (let k = v - 1; k >= 0; k--) {
        const s = I[j + k] + B[k % B.length] + carry
        I[j + k] = s & 0xff
        carry = s >> 8
      }
    }
  }
  return Buffer.concat(out).subarray(0, n)
}

/** Decrypts an EncryptedContentInfo's content under its AlgorithmIdentifier. */
function decrypt(algorithm: Der, data: Buffer, password: string): Buffer {
  const [idDer, params] = children(algorithm)
  const alg = oid(idDer)
  let cipher: string, keys: Buffer[], iv: Buffer
  if (alg === OID.pbes2) {
    const [kdf, scheme] = children(params)
    const [kdfId, kdfParams] = children(kdf)
    if (oid(kdfId) !== OID.pbkdf2) throw new Error('PKCS#12: PBES2 with a key derivation other than PBKDF2')
    const p = children(kdfParams)
    const salt = octets(p[0])
    const iterations = integer(p[1])
    const prfDer = p.find((d) => d.tag === TAG.SEQUENCE)
    const prf = prfDer ? HMAC_PRF[oid(children(prfDer)[0])] : 'sha1'
    const [schemeId, ivDer] = children(scheme)
    cipher = CIPHERS[oid(schemeId)]
    if (!prf || !cipher) throw new Error('PKCS#12: an unsupported PBES2 cipher or PRF')
    iv = octets(ivDer)
    keys = pbes2Passwords(password).map((p) => pbkdf2Sync(p, salt, iterations, cipherKeyLength(cipher), prf))
  } else if (alg === OID.pbeSha1TripleDes || alg === OID.pbeSha1Rc2_40 || alg === OID.pbeSha1Rc2_128) {
    const [saltDer, iterDer] = children(params)
    const salt = octets(saltDer)
    const iterations = integer(iterDer)
    const [name, keyLength] = alg === OID.pbeSha1TripleDes ? ['des-ede3-cbc', 24] : alg === OID.pbeSha1Rc2_40 ? ['rc2-40-cbc', 5] : ['rc2-cbc', 16]
    cipher = name
    keys = [pkcs12Kdf(password, salt, 1, iterations, keyLength as number)]
    iv = pkcs12Kdf(password, salt, 2, iterations, 8)
  } else {
    throw new Error(`PKCS#12: unsupported encryption ${alg}`)
  }
  for (const key of keys) {
    try {
      const d = createDecipheriv(cipher, key, iv)
      return Buffer.concat([d.update(data), d.final()])
    } catch (e) {
      const code = (e as { code?: string }).code
      if (cipher.startsWith('rc2') && code !== 'ERR_OSSL_BAD_DECRYPT') {
        throw new Error('PKCS#12: the certificates are RC2-encrypted, which this Node.js no longer offers: re-export with `openssl pkcs12 -export` (AES)')
      }
    }
  }
  throw new Error('PKCS#12: cannot decrypt (wrong password?)')
}

const cipherKeyLength = (cipher: string) => (cipher === 'aes-128-cbc' ? 16 : cipher === 'aes-192-cbc' ? 24 : cipher === 'des-ede3-cbc' ? 24 : 32)

/** Checks MacData (RFC 7292 §4): HMAC over the authenticated safe with a KDF-derived key. */
function checkMac(macData: Der, content: Buffer, password: string) {
  const [digestInfo, saltDer, iterDer] = children(macData)
  const [algorithm, macDer] = children(digestInfo)
  const digest = DIGESTS[oid(children(algorithm)[0])]
  if (!digest) throw new Error('PKCS#12: unsupported MAC digest')
  const key = pkcs12Kdf(password, octets(saltDer), 3, iterDer ? integer(iterDer) : 1, digest.u, digest)
  const mac = createHmac(digest.name, key).update(content).digest()
  const expected = octets(macDer)
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw new Error('PKCS#12: wrong password (or the file was altered: its MAC does not verify)')
}

/** An EncryptedPrivateKeyInfo, decrypted by OpenSSL (PBES2, or PKCS#12 PBE with the BMP password). */
function shroudedKey(der: Buffer, password: string): KeyObject {
  let last: unknown
  for (const passphrase of pbes2Passwords(password)) {
    try {
      return createPrivateKey({ key: der, format: 'der', type: 'pkcs8', passphrase })
    } catch (e) {
      last = e
    }
  }
  throw new Error(`PKCS#12: cannot decrypt the private key (wrong password?): ${(last as Error).message}`)
}

export function readPkcs12(der: Buffer, password: string): Pkcs12Contents {
  const pfx = children(expect(readDer(der), TAG.SEQUENCE, 'a PFX'))
  if (integer(pfx[0]) !== 3) throw new Error('PKCS#12: version 3 expected')
  const [typeDer, wrapped] = children(expect(pfx[1], TAG.SEQUENCE, 'the authenticated safe'))
  if (oid(typeDer) !== OID.data) throw new Error('PKCS#12: only password integrity (not public-key) is supported')
  const content = octets(children(expect(wrapped, TAG.CONTEXT_0, 'content'))[0])
  if (pfx[2]) checkMac(pfx[2], content, password)

  let key: KeyObject | undefined
  const certificates: X509Certificate[] = []
  for (const info of children(readDer(content))) {
    const [t, c] = children(info)
    const inner = children(expect(c, TAG.CONTEXT_0, 'content'))[0]
    let safeContents: Buffer
    if (oid(t) === OID.data) safeContents = octets(inner)
    else if (oid(t) === OID.encryptedData) {
      const [, eci] = children(inner)
      const [, algorithm, encrypted] = children(eci)
      safeContents = decrypt(algorithm, octets(encrypted), password)
    } else throw new Error(`PKCS#12: unsupported content type ${oid(t)}`)
    for (const bag of children(readDer(safeContents))) {
      const [idDer, valueWrap] = children(bag)
      const value = children(expect(valueWrap, TAG.CONTEXT_0, 'a bag value'))[0]
      const id = oid(idDer)
      if (id === OID.keyBag) key ??= createPrivateKey({ key: value.raw, format: 'der', type: 'pkcs8' })
      else if (id === OID.shroudedKeyBag) key ??= shroudedKey(value.raw, password)
      else if (id === OID.certBag) {
        const [certType, certWrap] = children(value)
        if (oid(certType) !== OID.x509Certificate) continue
        certificates.push(new X509Certificate(octets(children(certWrap)[0])))
      }
    }
  }
  if (!key) throw new Error('PKCS#12: no private key inside')
  return { key, certificates }
}
