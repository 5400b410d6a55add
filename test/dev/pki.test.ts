import t from 'tap'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { copyFileSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { createSecureContext } from 'node:tls'
import forge from 'node-forge'
import { run } from '../../src/cli/pki.js'
import {
  DEV_P12_PASSWORD,
  type DevPkiOptions,
  ensureDevPki,
  issueClientCertificate,
  readClientIdFromCert,
} from '../../dev/pki.js'
import { loadNodeIdentity } from '../../src/pki/node-identity.js'

const systems = JSON.parse(readFileSync('config/systems.json', 'utf8')).systems as DevPkiOptions['systems']
const dir = t.testdir()
const opts: DevPkiOptions = {
  dir,
  nodeId: '320000',
  nodeName: '江苏省政务数据共享交换平台',
  systems,
  hostnames: ['node-320000.tongban.test', '10.20.30.40'],
}

const x509 = (file: string) => new X509Certificate(readFileSync(file))
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'

/** mtime of every file under dir, by relative path. */
function snapshot(root: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath ?? entry.path, entry.name)
    out[path.relative(root, file)] = statSync(file).mtimeMs
  }
  return out
}

const started = performance.now()
const paths = await ensureDevPki(opts)
t.comment(`ensureDevPki from scratch: ${Math.round(performance.now() - started)} ms`)
const ca = x509(paths.ca.cert)

t.test('creates the CA, the node and every client', async (t) => {
  t.equal(paths.created.length, 4 + 3 * systems.length)
  t.same(Object.keys(paths.clients), systems.map((s) => s.clientId))
  t.ok(ca.ca, 'CA certificate has basicConstraints CA')
  t.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey), 'CA is self-signed')
  t.equal((ca.publicKey.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048, true)
  const years = (Date.parse(ca.validTo) - Date.now()) / (365.25 * 86_400_000)
  t.ok(years > 9.9 && years < 10.1, `CA valid ~10 years (${years.toFixed(2)})`)
})

t.test('node and client certificates chain to the CA and match their keys', async (t) => {
  const leaves = [paths.node, ...Object.values(paths.clients)]
  for (const files of leaves) {
    const cert = x509(files.cert)
    t.ok(cert.checkIssued(ca), `${path.basename(files.cert)} issued by CA`)
    t.ok(cert.verify(ca.publicKey), `${path.basename(files.cert)} signature verifies`)
    t.notOk(cert.ca)
    const keyPem = readFileSync(files.key, 'utf8')
    t.match(keyPem, /^-----BEGIN PRIVATE KEY-----/, 'PKCS#8 PEM')
    t.ok(cert.checkPrivateKey(createPrivateKey(keyPem)), 'key matches certificate')
    const years = (Date.parse(cert.validTo) - Date.now()) / (365.25 * 86_400_000)
    t.ok(years > 1.9 && years < 2.1, 'valid ~2 years')
  }
})

t.test('serial numbers are random, positive, 128 bits; SHA-256; key identifiers', async (t) => {
  const certs = [paths.ca, paths.node, ...Object.values(paths.clients)].map((f) => forge.pki.certificateFromPem(readFileSync(f.cert, 'utf8')))
  const serials = certs.map((c) => c.serialNumber)
  t.equal(new Set(serials).size, serials.length, 'distinct')
  for (const serial of serials) {
    const bytes = Buffer.from(serial, 'hex')
    t.ok(bytes[0] < 0x80, 'positive')
    t.ok(bytes.length === 16 || (bytes.length === 17 && bytes[0] === 0 && bytes[1] >= 0x80), `128-bit ${serial}`)
  }
  const caKeyId = certs[0].generateSubjectKeyIdentifier().toHex()
  for (const cert of certs) {
    t.equal(cert.signatureOid, forge.pki.oids.sha256WithRSAEncryption)
    const ski = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier: string } | undefined
    t.equal(ski?.subjectKeyIdentifier, cert.generateSubjectKeyIdentifier().toHex(), 'SKI')
    const aki = cert.getExtension('authorityKeyIdentifier') as { value: string } | undefined
    const keyIdentifier = forge.asn1.fromDer(aki!.value).value[0] as forge.asn1.Asn1
    t.equal(forge.util.bytesToHex(keyIdentifier.value as string), caKeyId, 'AKI names the CA key')
  }
})

t.test('node certificate: names, SANs, serverAuth + clientAuth', async (t) => {
  const cert = x509(paths.node.cert)
  t.match(cert.subject, /^CN=tongban-node-320000$/m)
  t.match(cert.subject, /^serialNumber=320000$/m)
  t.match(cert.subject, /^O=江苏省政务数据共享交换平台$/m)
  for (const host of ['localhost', 'node-320000.tongban.test']) t.equal(cert.checkHost(host), host, `SAN ${host}`)
  for (const ip of ['127.0.0.1', '::1', '10.20.30.40']) t.equal(cert.checkIP(ip), ip, `SAN ${ip}`)
  t.notOk(cert.checkHost('example.org'))
  t.same([...(cert.keyUsage ?? [])].sort(), [SERVER_AUTH, CLIENT_AUTH])
})

t.test('client certificates: CN = client id, department in O and OU, clientAuth', async (t) => {
  for (const system of systems) {
    const pem = readFileSync(paths.clients[system.clientId].cert, 'utf8')
    const cert = new X509Certificate(pem)
    t.equal(readClientIdFromCert(pem), system.clientId)
    t.equal(readClientIdFromCert(cert), system.clientId)
    t.match(cert.subject, new RegExp(`^O=${system.department.name}$`, 'm'))
    t.match(cert.subject, new RegExp(`^OU=${system.department.code}$`, 'm'))
    t.same(cert.keyUsage, [CLIENT_AUTH])
  }
  const jiangning = x509(paths.clients['jn-civil-affairs'].cert)
  t.match(jiangning.subject, /^ST=江苏省$/m)
  t.match(jiangning.subject, /^L=南京市江宁区$/m)
})

t.test('Chinese names survive the round trip, issuer bytes equal the CA subject', async (t) => {
  t.match(ca.subject, /^O=江苏省政务服务管理办公室$/m)
  t.match(ca.subject, /^CN=Jiangsu Province Government Data Sharing Root CA \(dev\)$/m)
  t.match(ca.subject, /^C=CN$/m)
  t.match(ca.subject, /^ST=Jiangsu$/m)
  for (const files of [paths.node, ...Object.values(paths.clients)]) t.equal(x509(files.cert).issuer, ca.subject)
})

t.test('the PKCS#12 opens with the password and holds the same certificate, key and CA', async (t) => {
  for (const system of systems) {
    const files = paths.clients[system.clientId]
    const der = readFileSync(files.p12)
    const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der.toString('binary')), DEV_P12_PASSWORD)
    const [own] = p12.getBagsByFriendlyName(system.clientId, forge.pki.oids.certBag)
    t.ok(own?.cert, 'certificate bag named after the client')
    const pem = forge.pki.certificateToPem(own.cert!)
    t.equal(new X509Certificate(pem).fingerprint256, x509(files.cert).fingerprint256, 'same certificate')
    const certs = p12.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag] ?? []
    t.ok(
      certs.some((b) => new X509Certificate(forge.pki.certificateToPem(b.cert!)).fingerprint256 === ca.fingerprint256),
      'CA in the chain',
    )
    const keys = p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag })[forge.pki.oids.pkcs8ShroudedKeyBag] ?? []
    t.equal(keys.length, 1)
    const key = createPrivateKey(forge.pki.privateKeyToPem(keys[0].key!))
    t.ok(x509(files.cert).checkPrivateKey(key), 'key in the p12 matches')
    t.throws(() => forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der.toString('binary')), 'wrong'), 'wrong password fails')
    // OpenSSL (Node's TLS, curl) must read it too.
    t.doesNotThrow(() => createSecureContext({ pfx: der, passphrase: DEV_P12_PASSWORD }), 'OpenSSL opens it')
  }
})

t.test('private keys and p12 files are 0600', async (t) => {
  const secrets = [paths.ca.key, paths.node.key, ...Object.values(paths.clients).flatMap((c) => [c.key, c.p12])]
  for (const file of secrets) t.equal(statSync(file).mode & 0o777, 0o600, path.relative(dir, file))
  t.equal(statSync(paths.ca.cert).mode & 0o077, 0o044, 'certificates are world-readable')
})

t.test('a second run changes nothing', async (t) => {
  const before = snapshot(dir)
  const again = await ensureDevPki(opts)
  t.same(again.created, [])
  t.same(snapshot(dir), before, 'no file rewritten')
  t.same({ ...again, created: [] }, { ...paths, created: [] }, 'same paths')
})

t.test('loadNodeIdentity', async (t) => {
  const id = loadNodeIdentity({ certFile: paths.node.cert, keyFile: paths.node.key, caFile: paths.ca.cert })
  t.equal(id.cert.fingerprint256, x509(paths.node.cert).fingerprint256)
  t.equal(id.privateKey.type, 'private')
  t.equal(id.publicKey.type, 'public')
  t.ok(id.cert.checkPrivateKey(id.privateKey))
  t.equal(id.caPem, readFileSync(paths.ca.cert, 'utf8'))

  const missing = path.join(dir, 'node', 'nope.crt.pem')
  t.throws(() => loadNodeIdentity({ certFile: missing, keyFile: paths.node.key, caFile: paths.ca.cert }), {
    message: new RegExp(`node certificate ${missing} cannot be read: ENOENT`),
  })
  const otherKey = paths.clients['nj-housing'].key
  t.throws(() => loadNodeIdentity({ certFile: paths.node.cert, keyFile: otherKey, caFile: paths.ca.cert }), {
    message: `node private key ${otherKey} does not match the certificate ${paths.node.cert}`,
  })
  // A CA that did not issue the node certificate: a client certificate stands in for it.
  const wrongCa = paths.clients['nj-housing'].cert
  t.throws(() => loadNodeIdentity({ certFile: paths.node.cert, keyFile: paths.node.key, caFile: wrongCa }), {
    message: `node certificate ${paths.node.cert} was not issued by a CA in ${wrongCa}`,
  })
  t.throws(() => loadNodeIdentity({ certFile: paths.node.key, keyFile: paths.node.key, caFile: paths.ca.cert }), {
    message: /contains no PEM certificate/,
  })
})

t.test('a system added later gets a certificate; the others are untouched', async (t) => {
  const before = snapshot(dir)
  const added = { clientId: 'js-market-regulation', department: { code: '11320000MB0000099X', name: '江苏省市场监督管理局' }, region: '320000' }
  const after = await ensureDevPki({ ...opts, systems: [...systems, added] })
  const files = after.clients['js-market-regulation']
  t.same(after.created.sort(), [files.cert, files.key, files.p12].sort())
  const now = snapshot(dir)
  for (const [file, mtime] of Object.entries(before)) t.equal(now[file], mtime, `${file} untouched`)
  t.equal(readClientIdFromCert(readFileSync(files.cert, 'utf8')), 'js-market-regulation')
  t.ok(x509(files.cert).checkIssued(ca))
})

t.test('missing pieces are restored: a lost p12 is repacked, a lost key re-issues', async (t) => {
  const c = paths.clients['js-audit']
  const certBefore = readFileSync(c.cert, 'utf8')
  rmSync(c.p12)
  const repacked = await ensureDevPki(opts)
  t.same(repacked.created, [c.p12])
  t.equal(readFileSync(c.cert, 'utf8'), certBefore, 'certificate kept')

  rmSync(paths.node.key)
  const reissued = await ensureDevPki(opts)
  t.same(reissued.created.sort(), [paths.node.cert, paths.node.key].sort())
  t.ok(x509(paths.node.cert).checkPrivateKey(createPrivateKey(readFileSync(paths.node.key))))
})

t.test('issueClientCertificate re-issues one system only', async (t) => {
  const before = snapshot(dir)
  const c = paths.clients['nj-housing']
  const old = x509(c.cert).serialNumber
  const system = systems.find((s) => s.clientId === 'nj-housing')!
  t.same(await issueClientCertificate({ dir, system }), c)
  t.not(x509(c.cert).serialNumber, old)
  const now = snapshot(dir)
  const changed = Object.keys(now).filter((f) => now[f] !== before[f]).sort()
  t.same(changed, ['clients/nj-housing.crt.pem', 'clients/nj-housing.key.pem', 'clients/nj-housing.p12'])
  await t.rejects(issueClientCertificate({ dir: t.testdir(), system }), { message: /ca\.crt\.pem not found; run `tongban pki init`/ })
  await t.rejects(issueClientCertificate({ dir, system: { ...system, clientId: '../escape' } }), { message: /invalid client id/ })
})

t.test('a new CA re-issues everything under it', async (t) => {
  const oldCa = path.join(t.testdir(), 'old-ca.crt.pem')
  copyFileSync(paths.ca.cert, oldCa)
  rmSync(paths.ca.key)
  const renewed = await ensureDevPki(opts)
  t.equal(renewed.created.length, 4 + 3 * systems.length)
  const newCa = x509(paths.ca.cert)
  t.not(newCa.fingerprint256, ca.fingerprint256)
  for (const files of [paths.node, ...Object.values(paths.clients)]) t.ok(x509(files.cert).checkIssued(newCa))
  t.throws(() => loadNodeIdentity({ certFile: paths.node.cert, keyFile: paths.node.key, caFile: oldCa }), {
    message: /was not issued by a CA in/,
  })
})

t.test('CLI', async (t) => {
  const capture = () => {
    const io = { stdout: [] as string[], stderr: [] as string[] }
    return { ...io, io: { out: (s: string) => io.stdout.push(s), err: (s: string) => io.stderr.push(s) } }
  }
  const cliDir = t.testdir()
  const init = capture()
  t.equal(await run(['init', '--dir', cliDir, '--json'], init.io), 0)
  const printed = JSON.parse(init.stdout.join('\n'))
  t.equal(printed.dir, cliDir)
  t.ok(printed.clients['jn-civil-affairs'].p12)
  t.equal(x509(printed.node.cert).checkHost('localhost'), 'localhost')

  const again = capture()
  t.equal(await run(['init', '--dir', cliDir], again.io), 0)
  t.match(again.stdout.join('\n'), /nothing to do/)

  const issue = capture()
  const args = ['issue', 'new-sys', '--dir', cliDir, '--department-code', '11320100MB0000099X', '--department-name', '测试局', '--region', '320102']
  t.equal(await run(args, issue.io), 0)
  t.match(x509(path.join(cliDir, 'clients', 'new-sys.crt.pem')).subject, /^O=测试局$/m)

  const usage = async (argv: string[]) => {
    const c = capture()
    return [await run(argv, c.io), c.stderr.join('\n')] as const
  }
  t.same((await usage([]))[0], 2)
  t.same((await usage(['bogus']))[0], 2)
  t.same((await usage(['init', '--nope']))[0], 2)
  t.same((await usage(['issue', 'unknown-sys', '--dir', cliDir]))[0], 2)
  t.same((await usage(['issue', 'x', '--dir', cliDir, '--department-code', 'c', '--department-name', 'n', '--region', '32']))[0], 2)
  const [code, err] = await usage(['issue', 'x', '--dir', t.testdir(), '--department-code', 'c', '--department-name', 'n', '--region', '320000'])
  t.equal(code, 1)
  t.match(err, /not found; run `tongban pki init`/)
  const help = capture()
  t.equal(await run(['init', '--help'], help.io), 0)
  t.match(help.stdout.join(''), /Usage: tongban pki init/)
})
