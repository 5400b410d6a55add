// The dev seal PKI (电子印章): an SM2 seal root CA and one seal certificate per issuing
// authority of the simulated licence library (dev/providers/licences), under certs/seals/.
// Certificates are SM2-with-SM3 (src/pki/sm2-x509.ts); keys are SEC1 PEM on the SM2 curve.
// Idempotent like the rest of `tongban pki init`: what is missing, unreadable, expired or
// not issued by the current seal CA is made again; the RSA PKI beside it is not touched.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { creditCheckCharacter } from '../src/gb/credit-code.js'
import {
  generateSm2KeyPair,
  issueSm2Certificate,
  parseSm2Certificate,
  sm2PrivateKeyHexFromPem,
  sm2PrivateKeyPem,
  sm2PublicKeyOf,
  verifySm2CertificateSignature,
} from '../src/pki/sm2-x509.js'

export interface SealAuthority {
  /** File name and seal id stem. */
  id: string
  name: string
  creditCode: string
  region: string
  /** 印章编码 in the seal's TBS. */
  sealId: string
  /** Licence types this authority issues. */
  types: string[]
}

const withCheck = (first17: string) => first17 + creditCheckCharacter(first17)

/**
 * The issuing authorities of the simulated population. Licences are issued by county and city
 * offices in reality; the simulation seals with one provincial seal per licence type.
 */
export const SEAL_AUTHORITIES: readonly SealAuthority[] = [
  { id: 'js-samr', name: '江苏省市场监督管理局', creditCode: withCheck('11320000MB0000130'), region: '320000', sealId: '32000011320000YYZZ01', types: ['YYZZ'] },
  { id: 'js-public-security', name: '江苏省公安厅', creditCode: '11320000014000120T', region: '320000', sealId: '32000011320000SFZ001', types: ['JMSFZ'] },
  { id: 'js-natural-resources', name: '江苏省自然资源厅', creditCode: '11320000MB0000091R', region: '320000', sealId: '32000011320000BDC001', types: ['BDCQZ'] },
]

const CA_SUBJECT = { C: 'CN', O: '江苏省政务服务管理办公室', CN: 'Jiangsu Electronic Seal Root CA (SM2, dev)' }
// Synthetic licences go back to 1990 (the oldest enterprises): the dev seals are valid from
// then, so "valid on the issue date" holds for every licence the library issues.
const VALID_FROM = new Date('1990-01-01T00:00:00Z')
const CA_YEARS = 20
const SEAL_YEARS = 5

export function sealPaths(dir: string) {
  const seals = path.join(dir, 'seals')
  return {
    dir: seals,
    ca: { cert: path.join(seals, 'seal-ca.crt.pem'), key: path.join(seals, 'seal-ca.key.pem') },
    authority: (id: string) => ({ cert: path.join(seals, `${id}.crt.pem`), key: path.join(seals, `${id}.key.pem`) }),
  }
}

export interface LoadedSeal {
  authority: SealAuthority
  certPem: string
  privateKeyHex: string
}

const exists = (f: string) => stat(f).then(() => true, () => false)

async function writeAtomic(file: string, data: string, secret = false) {
  await mkdir(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, data, { mode: secret ? 0o600 : 0o644 })
  await rename(tmp, file)
}

/** The key and certificate at these paths, when they belong together and (if given) chain to the CA and are valid now. */
async function usable(files: { cert: string; key: string }, caPublicKeyHex?: string): Promise<{ certPem: string; privateKeyHex: string } | null> {
  if (!(await exists(files.cert)) || !(await exists(files.key))) return null
  try {
    const certPem = await readFile(files.cert, 'utf8')
    const privateKeyHex = sm2PrivateKeyHexFromPem(await readFile(files.key, 'utf8'))
    const cert = parseSm2Certificate(certPem)
    if (cert.publicKeyHex !== sm2PublicKeyOf(privateKeyHex)) return null
    if (cert.notAfter.getTime() < Date.now() + 86_400_000) return null
    if (caPublicKeyHex && !verifySm2CertificateSignature(certPem, caPublicKeyHex)) return null
    return { certPem, privateKeyHex }
  } catch {
    return null
  }
}

const yearsFromNow = (n: number) => {
  const d = new Date()
  d.setUTCFullYear(d.getUTCFullYear() + n)
  return d
}

/** Creates what is missing of the seal PKI under `<dir>/seals`; returns the files written. */
export async function ensureSealPki(o: { dir: string; force?: boolean; log?: (m: string) => void }): Promise<string[]> {
  const log = o.log ?? (() => {})
  const p = sealPaths(path.resolve(o.dir))
  const created: string[] = []
  let ca = o.force ? null : await usable(p.ca)
  if (!ca) {
    log(`creating seal CA ${path.relative(path.resolve(o.dir), p.ca.cert)} (SM2)`)
    const key = generateSm2KeyPair()
    const certPem = issueSm2Certificate({
      subject: CA_SUBJECT,
      publicKeyHex: key.publicKeyHex,
      signerPrivateKeyHex: key.privateKeyHex,
      notBefore: VALID_FROM,
      notAfter: yearsFromNow(CA_YEARS),
      isCA: true,
      pathLen: 0,
    })
    await writeAtomic(p.ca.key, sm2PrivateKeyPem(key.privateKeyHex, key.publicKeyHex), true)
    await writeAtomic(p.ca.cert, certPem)
    created.push(p.ca.key, p.ca.cert)
    ca = { certPem, privateKeyHex: key.privateKeyHex }
  }
  const caPublic = parseSm2Certificate(ca.certPem).publicKeyHex
  for (const a of SEAL_AUTHORITIES) {
    const files = p.authority(a.id)
    if (!o.force && (await usable(files, caPublic))) continue
    log(`issuing seal certificate ${path.relative(path.resolve(o.dir), files.cert)} (${a.name})`)
    const key = generateSm2KeyPair()
    const certPem = issueSm2Certificate({
      subject: { C: 'CN', O: a.name, OU: a.creditCode, CN: `${a.name}电子印章`, serialNumber: a.sealId },
      publicKeyHex: key.publicKeyHex,
      issuer: { certPem: ca.certPem, privateKeyHex: ca.privateKeyHex },
      notBefore: VALID_FROM,
      notAfter: yearsFromNow(SEAL_YEARS),
      keyUsage: ['digitalSignature', 'nonRepudiation'],
    })
    await writeAtomic(files.key, sm2PrivateKeyPem(key.privateKeyHex, key.publicKeyHex), true)
    await writeAtomic(files.cert, certPem)
    created.push(files.key, files.cert)
  }
  return created
}

/** The seals of the authorities, read from `<dir>/seals` (made by ensureSealPki). */
export async function loadSeals(dir: string): Promise<LoadedSeal[]> {
  const p = sealPaths(path.resolve(dir))
  return Promise.all(
    SEAL_AUTHORITIES.map(async (authority) => {
      const files = p.authority(authority.id)
      const found = await usable(files)
      if (!found) throw new Error(`seal of ${authority.name} missing or unreadable in ${p.dir}: run \`tongban pki init\``)
      return { authority, ...found }
    }),
  )
}
