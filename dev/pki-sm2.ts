// Dev PKI, national-cryptography tree (docs/gm.md): an SM2 root CA, SM2 signing certificates of
// nodes and SM2 client certificates of the departmental systems, in `<pki dir>/sm2/`, beside
// the RSA tree and without touching it. Certificates are SM2-with-SM3 (src/pki/sm2-x509.ts).
// An SM2 node signs its evidence with sm2/node/<id>; TLS and node links keep the RSA node
// certificate (Node's OpenSSL offers no TLCP).
import { X509Certificate } from 'node:crypto'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import {
  generateSm2KeyPair,
  issueSm2Certificate,
  parseSm2Certificate,
  sm2PrivateKeyPem,
  verifySm2CertificateSignature,
} from '../src/pki/sm2-x509.js'
import { sm2PrivateKeyHexOf, sm2PublicKeyHexOf, sm2PublicKeyOfPrivate } from '../src/pki/suites.js'
import type { SystemSubject } from './pki.js'

export const SM2_DIR = 'sm2'

const CA_SUBJECT = { C: 'CN', O: '江苏省政务服务管理办公室', CN: 'Jiangsu Province Government Data Sharing SM2 Root CA (dev)' }
const CA_YEARS = 10
const LEAF_YEARS = 2
const CLOCK_SKEW_MS = 5 * 60_000
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

export interface Sm2PkiPaths {
  dir: string
  ca: { cert: string; key: string }
  nodes: Record<string, { cert: string; key: string }>
  clients: Record<string, { cert: string; key: string }>
  created: string[]
}

export const sm2Dir = (pkiDir: string) => path.join(path.resolve(pkiDir), SM2_DIR)
export const sm2CaPaths = (dir: string) => ({ cert: path.join(dir, 'ca.crt.pem'), key: path.join(dir, 'ca.key.pem') })
export const sm2NodePaths = (dir: string, id: string) => ({ cert: path.join(dir, 'node', `${id}.crt.pem`), key: path.join(dir, 'node', `${id}.key.pem`) })
export const sm2ClientPaths = (dir: string, id: string) => ({ cert: path.join(dir, 'clients', `${id}.crt.pem`), key: path.join(dir, 'clients', `${id}.key.pem`) })

/**
 * Creates what is missing or unusable (missing, unreadable, key does not match, not issued by
 * the current SM2 CA, expired) under `dir` (the sm2 directory itself); keeps the rest.
 */
export async function ensureSm2DevPki(opts: {
  dir: string
  nodes: Array<{ id: string; name: string }>
  systems: SystemSubject[]
  force?: boolean
  log?: (m: string) => void
}): Promise<Sm2PkiPaths> {
  const log = opts.log ?? (() => {})
  const dir = path.resolve(opts.dir)
  const created: string[] = []
  const write = async (file: string, data: string, secret = false) => {
    await writeAtomic(file, data, secret)
    created.push(file)
  }
  for (const n of opts.nodes) name('node id', n.id)
  for (const s of opts.systems) name('client id', s.clientId)

  const ca = sm2CaPaths(dir)
  if (opts.force || (await unusable(ca))) {
    log(`creating SM2 root CA ${path.relative(process.cwd(), ca.cert)}`)
    const k = generateSm2KeyPair()
    const now = Date.now()
    const certPem = issueSm2Certificate({
      subject: CA_SUBJECT, publicKeyHex: k.publicKeyHex, signerPrivateKeyHex: k.privateKeyHex,
      notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: years(now, CA_YEARS), isCA: true, pathLen: 1,
      keyUsage: ['keyCertSign', 'cRLSign'],
    })
    await write(ca.key, sm2PrivateKeyPem(k.privateKeyHex, k.publicKeyHex), true)
    await write(ca.cert, certPem)
  }
  const issuer = { certPem: await readFile(ca.cert, 'utf8'), privateKeyHex: sm2PrivateKeyHexOf(await readFile(ca.key, 'utf8')) }
  const caPublic = parseSm2Certificate(issuer.certPem).publicKeyHex

  const leaf = async (files: { cert: string; key: string }, what: string, subject: Parameters<typeof issueSm2Certificate>[0]['subject'], client: boolean) => {
    const reason = opts.force ? 'forced' : await unusable(files, caPublic)
    if (!reason) return
    log(`issuing SM2 ${what} certificate ${path.relative(process.cwd(), files.cert)} (${reason})`)
    const k = generateSm2KeyPair()
    const now = Date.now()
    const certPem = issueSm2Certificate({
      subject, publicKeyHex: k.publicKeyHex, issuer,
      notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: years(now, LEAF_YEARS),
      keyUsage: ['digitalSignature', 'nonRepudiation'],
      ...(client ? { extKeyUsage: ['clientAuth'] as const } : {}),
    })
    await write(files.key, sm2PrivateKeyPem(k.privateKeyHex, k.publicKeyHex), true)
    await write(files.cert, certPem)
  }

  const nodes: Sm2PkiPaths['nodes'] = {}
  for (const n of opts.nodes) {
    nodes[n.id] = sm2NodePaths(dir, n.id)
    // CN as the RSA node certificate's: the parent names a child's checkpoints by it.
    await leaf(nodes[n.id], `node ${n.id}`, { CN: `tongban-node-${n.id}`, O: n.name, serialNumber: n.id }, false)
  }
  const clients: Sm2PkiPaths['clients'] = {}
  for (const s of opts.systems) {
    clients[s.clientId] = sm2ClientPaths(dir, s.clientId)
    await leaf(clients[s.clientId], 'client', { CN: s.clientId, O: s.department.name, OU: s.department.code }, true)
  }
  return { dir, ca, nodes, clients, created }
}

/** Why the pair cannot be kept (undefined: it can); `caPublic` absent: a self-signed CA. */
async function unusable(files: { cert: string; key: string }, caPublic?: string): Promise<string | undefined> {
  if (!(await exists(files.cert)) || !(await exists(files.key))) return 'missing'
  let certPem: string
  let publicHex: string | null
  try {
    certPem = await readFile(files.cert, 'utf8')
    publicHex = sm2PublicKeyHexOf(certPem)
    if (!publicHex) return 'not an SM2 certificate'
    if (sm2PublicKeyOfPrivate(sm2PrivateKeyHexOf(await readFile(files.key, 'utf8'))) !== publicHex) return 'key does not match'
  } catch (err) {
    return `unreadable: ${(err as Error).message}`
  }
  if (!verifySm2CertificateSignature(certPem, caPublic ?? publicHex)) return caPublic ? 'not issued by this SM2 CA' : 'not self-signed'
  if (Date.parse(new X509Certificate(certPem).validTo) <= Date.now()) return 'expired'
  return undefined
}

const years = (from: number, n: number) => {
  const d = new Date(from)
  d.setUTCFullYear(d.getUTCFullYear() + n)
  return d
}

function name(what: string, v: string): void {
  if (!NAME.test(v)) throw new Error(`invalid ${what}: ${JSON.stringify(v)}`)
}

async function writeAtomic(file: string, data: string, secret = false) {
  await mkdir(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, data, { mode: secret ? 0o600 : 0o644 })
  await rename(tmp, file)
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false)
}
