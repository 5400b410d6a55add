// Checkpoint signature suites (docs/tiers.md). Keys are parsed once per signer: a node signs
// once per audit batch, and verifiers check one signature per response.
//
// Keys accepted:
// - RS256, PS256: an RSA private key PEM (PKCS#1 or PKCS#8) to sign; a certificate PEM or
//   a public key PEM to verify.
// - SM2-SM3: to sign, a PEM private key on the SM2 curve (PKCS#8 "PRIVATE KEY" or SEC1
//   "EC PRIVATE KEY", as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2`
//   writes) or the private scalar as 64 hex digits; to verify, a certificate PEM, a public
//   key PEM, or the uncompressed point as hex (04‖x‖y, the 04 optional). Signatures are raw
//   r‖s (64 bytes), SM3 over Z‖M with the default user id 1234567812345678 (GM/T 0003).
import {
  X509Certificate,
  constants,
  createPrivateKey,
  createPublicKey,
  sign as rsaSign,
  verify as rsaVerify,
  type KeyObject,
} from 'node:crypto'
import { sm2KeyPair, sm2PublicKeyOf, sm2Sign, sm2Verify } from './sm2.js'

export type SuiteName = 'RS256' | 'PS256' | 'SM2-SM3'

export const SUITES: readonly SuiteName[] = ['RS256', 'PS256', 'SM2-SM3']

export const isSuiteName = (s: unknown): s is SuiteName => SUITES.includes(s as SuiteName)

export interface Signer {
  alg: SuiteName
  sign(data: Buffer): Buffer
  /**
   * The same signature off the event loop where the suite allows it: RSA signs on libuv's
   * thread pool (~0.3 ms of CPU per audit batch the request thread no longer spends).
   */
  signAsync(data: Buffer): Promise<Buffer>
}

const onThreadPool = (alg: string, key: Parameters<typeof rsaSign>[2]) => (data: Buffer) =>
  new Promise<Buffer>((resolve, reject) => rsaSign(alg, data, key, (err, sig) => (err ? reject(err) : resolve(sig))))

export function createSigner(alg: SuiteName, privateKeyPem: string): Signer {
  switch (alg) {
    case 'RS256': {
      const key = rsaKey(createPrivateKey(privateKeyPem), alg)
      return { alg, sign: (data) => rsaSign('sha256', data, key), signAsync: onThreadPool('sha256', key) }
    }
    case 'PS256': {
      const opts = { key: rsaKey(createPrivateKey(privateKeyPem), alg), ...PSS }
      return { alg, sign: (data) => rsaSign('sha256', data, opts), signAsync: onThreadPool('sha256', opts) }
    }
    case 'SM2-SM3': {
      const privateKey = sm2PrivateHex(privateKeyPem)
      const publicKey = sm2PublicKeyOf(privateKey)
      const sign = (data: Buffer) => Buffer.from(sm2Sign(data, privateKey, publicKey), 'hex')
      // ~0.5 ms (sm-crypto-v2), on the request thread (no thread pool takes JavaScript; a
      // worker's messages would cost about as much).
      return { alg, sign, signAsync: async (data) => sign(data) }
    }
    default:
      throw new Error(`unsupported signature suite: ${String(alg)}`)
  }
}

/** True only when `sig` is a valid `alg` signature over `data`; any bad input is false. */
export function verifySignature(alg: SuiteName, certOrPublicKeyPem: string, data: Buffer, sig: Buffer): boolean {
  try {
    switch (alg) {
      case 'RS256':
        return rsaVerify('sha256', data, rsaKey(publicKeyOf(certOrPublicKeyPem), alg), sig)
      case 'PS256':
        return rsaVerify('sha256', data, { key: rsaKey(publicKeyOf(certOrPublicKeyPem), alg), ...PSS }, sig)
      case 'SM2-SM3':
        return sig.length === 64 && sm2Verify(data, sig.toString('hex'), sm2PublicHex(certOrPublicKeyPem))
      default:
        return false
    }
  } catch {
    return false
  }
}

/** The uncompressed SM2 public key (04‖x‖y hex) of a certificate or public key PEM; null when it is not on the SM2 curve. */
export function sm2PublicKeyHexOf(certOrPublicKeyPem: string): string | null {
  try {
    return sm2PublicHex(certOrPublicKeyPem)
  } catch {
    return null
  }
}

/** The private scalar (64 hex digits) of an SM2 private key PEM (or hex); throws if it is not one. */
export const sm2PrivateKeyHexOf = (privateKeyPem: string): string => sm2PrivateHex(privateKeyPem)

/** The SM2 public key (04‖x‖y hex) of an SM2 private key scalar. */
export const sm2PublicKeyOfPrivate = (privateKeyHex: string): string => sm2PublicKeyOf(privateKeyHex)

/** A fresh SM2 key pair as hex: privateKey 64 digits, publicKey 04‖x‖y (130 digits). */
export const generateSm2KeyPair = sm2KeyPair

// JWS convention for PS256 (RFC 7518 §3.5): MGF1 with SHA-256, salt as long as the hash.
const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }

// Refuses a non-RSA key, so an RS256 checkpoint cannot be checked as some other algorithm.
function rsaKey(key: KeyObject, alg: 'RS256' | 'PS256'): KeyObject {
  const type = key.asymmetricKeyType
  if (type === 'rsa' || (alg === 'PS256' && type === 'rsa-pss')) return key
  throw new Error(`${alg}: not an RSA key`)
}

// Parsed once per certificate: verifiers check many checkpoints of few keys (an integrity
// run, a parent's checkpoints of its children, every hop's evidence), and parsing an X.509
// certificate costs more than the RSA verification itself. A KeyObject is immutable.
const publicKeys = new Map<string, KeyObject>()
function publicKeyOf(pem: string): KeyObject {
  let key = publicKeys.get(pem)
  if (!key) {
    key = pem.includes('-----BEGIN CERTIFICATE-----') ? new X509Certificate(pem).publicKey : createPublicKey(pem)
    if (publicKeys.size >= 256) publicKeys.clear() // bounded: certificates come and go slowly
    publicKeys.set(pem, key)
  }
  return key
}

// --- SM2 key material (the signatures: ./sm2.ts).

const HEX_PRIVATE = /^[0-9a-fA-F]{64}$/
const HEX_PUBLIC = /^(04)?([0-9a-fA-F]{128})$/

function sm2PrivateHex(key: string): string {
  const k = key.trim()
  if (HEX_PRIVATE.test(k)) return k.toLowerCase()
  // Node parses SM2 keys but cannot sign with them the standard way: only lift out the scalar.
  // (PKCS#8 export is safe; SEC1 export of an SM2 key aborts the process in Node 20.)
  const der = createPrivateKey(k).export({ type: 'pkcs8', format: 'der' })
  const [, algId, wrapped] = children(der, readTlv(der, 0))
  if (!wrapped || !isSm2(der, algId)) throw new Error('SM2-SM3: not an SM2 private key')
  const [, d] = children(der, readTlv(der, wrapped.start))
  if (!d || d.tag !== 0x04) throw new Error('SM2-SM3: malformed private key')
  return der.subarray(d.start, d.end).toString('hex').padStart(64, '0')
}

function sm2PublicHex(key: string): string {
  const m = HEX_PUBLIC.exec(key.trim())
  if (m) return `04${m[2].toLowerCase()}`
  const der = publicKeyOf(key).export({ type: 'spki', format: 'der' })
  const [algId, bits] = children(der, readTlv(der, 0))
  if (!bits || bits.tag !== 0x03 || !isSm2(der, algId)) throw new Error('SM2-SM3: not an SM2 public key')
  return der.subarray(bits.start + 1, bits.end).toString('hex')
}

// Just enough DER to find SM2 key material in PKCS#8 and SubjectPublicKeyInfo.
interface Tlv {
  tag: number
  start: number
  end: number
}

function readTlv(der: Buffer, at: number): Tlv {
  if (at + 2 > der.length) throw new Error('der: truncated')
  let len = der[at + 1]
  let start = at + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n < 1 || n > 3 || start + n > der.length) throw new Error('der: bad length')
    len = der.readUIntBE(start, n)
    start += n
  }
  if (start + len > der.length) throw new Error('der: truncated')
  return { tag: der[at], start, end: start + len }
}

function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = []
  for (let at = parent.start; at < parent.end; at = out[out.length - 1].end) out.push(readTlv(der, at))
  return out
}

// OID 1.2.156.10197.1.301 (the SM2 curve), as the body of a DER OBJECT IDENTIFIER.
const SM2_OID = Buffer.from('2a811ccf5501822d', 'hex')

function isSm2(der: Buffer, algId: Tlv | undefined): boolean {
  if (!algId || algId.tag !== 0x30) return false
  return children(der, algId).some((c) => c.tag === 0x06 && der.subarray(c.start, c.end).equals(SM2_OID))
}
