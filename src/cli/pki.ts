// `tongban pki …`: the dev PKI. `init` creates whatever is missing under certs/ for the node
// and the systems in config/systems.json; `issue` (re-)issues one system's certificate.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig } from '../config/index.js'
import { DEV_P12_PASSWORD, ensureDevPki, issueClientCertificate, type SystemSubject } from '../../dev/pki.js'
import { ensureSm2DevPki, sm2Dir } from '../../dev/pki-sm2.js'
import { ensureSealPki } from '../../dev/seal-pki.js'
import { createPool } from '../stores/postgres.js'
import { createRedis } from '../stores/redis.js'
import { revokeCertificate } from '../auth/systems.js'
import { createCertificateRequest, type RequestKey } from '../onboarding/csr-request.js'
import { stdio, type Io } from './io.js'

const OK = 0
const FAILURE = 1
const USAGE = 2

const HELP = `Usage: tongban pki <command>

Commands:
  init    create the dev PKI (root CA, node certificate, client certificates)
  issue   issue or re-issue one departmental system's client certificate
  request generate this department's own key and a certificate request (CSR) to register with
  revoke  revoke a system's registered certificate (no more tokens, on every replica)

Run \`tongban pki <command> --help\` for its options.`

const INIT_HELP = `Usage: tongban pki init [--dir certs] [--hostname name]... [--force] [--json]

Creates what is missing of the dev PKI: the root CA, this node's certificate (node id from
config/node.json or TONGBAN_NODE_ID), a client certificate with PKCS#12 for every system
in config/systems.json, and the SM2 seal CA with one seal certificate per licence authority
(seals/). Beside it, under sm2/, the national-cryptography tree (docs/gm.md): an SM2 root
CA, this node's SM2 signing certificate and an SM2 certificate for every system, all
SM2-with-SM3. Existing files are kept unless --force.

  --dir DIR            certificate directory (default: certs, or TONGBAN_PKI_DIR)
  --hostname NAME      extra DNS name or IP for the node certificate (repeatable);
                       localhost, 127.0.0.1, ::1 and the public URL's host are always in
  --p12-password PW    password of new .p12 files (default: ${DEV_P12_PASSWORD})
  --force              start over: new CAs, every certificate re-issued (both trees)
  --json               print the paths as JSON`

const ISSUE_HELP = `Usage: tongban pki issue <clientId> [--department-code CODE --department-name NAME --region REGION] [--dir certs]

Issues (or re-issues, replacing the files) the client certificate of one system under the
dev CA. The department and region default to the system's entry in config/systems.json.

  --department-code CODE  统一社会信用代码 of the department (goes into OU)
  --department-name NAME  department name (goes into O)
  --region REGION         GB/T 2260 region code, six digits
  --dir DIR               certificate directory (default: certs, or TONGBAN_PKI_DIR)
  --p12-password PW       password of the .p12 file (default: ${DEV_P12_PASSWORD})`

const REVOKE_HELP = `Usage: tongban pki revoke <clientId> [--reason TEXT]

Puts the system's registered certificate on the node's revocation list (PostgreSQL) and
tells every replica (Redis message): the token endpoint refuses the system with
AUTH_CLIENT_CERT_REVOKED, and tokens it already holds stop working. A certificate issued
afterwards (\`tongban pki issue\`, then \`tongban prepare\`) is not revoked.

  --reason TEXT   why (kept with the revocation)`

const REQUEST_HELP = `Usage: tongban pki request --client-id ID [--out DIR] [--ec [--curve P-256]] [--bits 2048]

Run at the department, not at the node: generates the system's private key and a PKCS#10
certificate request (subject CN = the client id). Writes ID.key.pem (mode 0600: keep it, it
never leaves the department) and ID.csr.pem (send it to the node's operator, who registers
the system with \`tongban systems register --csr ID.csr.pem\` or POST /v1/systems).

  --client-id ID     the system's client id (lower-case letters, digits, -)
  --out DIR          where to write the two files (default: the current directory)
  --ec               an EC key instead of RSA (what an HSM that makes EC keys holds); it
                     signs its client assertions ES256 (P-256) or ES384 (P-384)
  --curve C          with --ec: P-256 (default) or P-384
  --algorithm rsa|ec the same choice spelled out (default rsa)
  --bits N           RSA modulus size, 2048 (default), 3072 or 4096

The same with openssl (RSA, or EC P-256):
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ID.key.pem
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out ID.key.pem
  chmod 600 ID.key.pem
  openssl req -new -key ID.key.pem -subj "/CN=ID" -sha256 -out ID.csr.pem`

class UsageError extends Error {}

export async function run(args: string[], io: Io = stdio): Promise<number> {
  const [command, ...rest] = args
  try {
    switch (command) {
      case 'init':
        return await init(rest, io)
      case 'issue':
        return await issue(rest, io)
      case 'revoke':
        return await revoke(rest, io)
      case 'request':
        return await request(rest, io)
      case '--help':
      case '-h':
        io.out(HELP)
        return OK
      case undefined:
        throw new UsageError('missing command')
      default:
        throw new UsageError(`unknown command: pki ${command}`)
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`tongban pki: ${(err as Error).message}\n`)
      io.err(command === 'init' ? INIT_HELP : command === 'issue' ? ISSUE_HELP : command === 'revoke' ? REVOKE_HELP : command === 'request' ? REQUEST_HELP : HELP)
      return USAGE
    }
    io.err(`tongban pki ${command}: ${(err as Error).message}`)
    return FAILURE
  }
}

async function init(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      hostname: { type: 'string', multiple: true },
      'p12-password': { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    io.out(INIT_HELP)
    return OK
  }
  const config = loadConfig()
  // In JSON mode stdout carries only the JSON.
  const log = values.json ? io.err : io.out
  const paths = await ensureDevPki({
    dir: values.dir ?? config.pki.dir,
    nodeId: config.node.id,
    nodeName: config.node.name,
    systems: readSystems(config.files.systemsFile),
    hostnames: [publicHost(config.node.publicUrl), ...(values.hostname ?? [])],
    p12Password: values['p12-password'],
    force: values.force,
    log,
  })
  // The national-cryptography tree beside it (certs/sm2, docs/gm.md): an SM2 node's signing
  // certificate and the systems' SM2 certificates; the RSA tree above is left as it is.
  const sm2 = await ensureSm2DevPki({
    dir: sm2Dir(values.dir ?? config.pki.dir),
    nodes: [{ id: config.node.id, name: config.node.name }],
    systems: readSystems(config.files.systemsFile),
    force: values.force,
    log,
  })
  paths.created.push(...sm2.created)
  // The seal PKI of electronic licences (SM2, certs/seals/), beside the RSA one.
  paths.created.push(...(await ensureSealPki({ dir: values.dir ?? config.pki.dir, force: values.force, log })))
  if (values.json) {
    io.out(JSON.stringify({ ...paths, sm2 }, null, 2))
  } else {
    const relative = path.relative(process.cwd(), paths.dir)
    const where = relative.startsWith('..') ? paths.dir : relative || '.'
    const clients = Object.keys(paths.clients).length
    io.out(
      paths.created.length
        ? `dev PKI in ${where}: ${paths.created.length} files written (CA, node ${config.node.id}, ${clients} clients)`
        : `dev PKI in ${where} is complete; nothing to do`,
    )
    if (!values['p12-password']) io.out(`.p12 password: ${DEV_P12_PASSWORD}`)
  }
  return OK
}

async function issue(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'department-code': { type: 'string' },
      'department-name': { type: 'string' },
      region: { type: 'string' },
      dir: { type: 'string' },
      'p12-password': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    io.out(ISSUE_HELP)
    return OK
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one client id')
  const clientId = positionals[0]
  const config = loadConfig()
  const listed = readSystems(config.files.systemsFile).find((s) => s.clientId === clientId)
  const code = values['department-code'] ?? listed?.department.code
  const name = values['department-name'] ?? listed?.department.name
  const region = values.region ?? listed?.region
  if (!code || !name || !region) {
    throw new UsageError(`${clientId} is not in ${config.files.systemsFile}: give --department-code, --department-name and --region`)
  }
  if (!/^\d{6}$/.test(region)) throw new UsageError(`--region: expected a six-digit GB/T 2260 code, got ${region}`)

  const files = await issueClientCertificate({
    dir: values.dir ?? config.pki.dir,
    system: { clientId, department: { code, name }, region },
    p12Password: values['p12-password'],
  })
  io.out(`issued ${clientId}:\n  ${files.cert}\n  ${files.key}\n  ${files.p12}`)
  return OK
}

async function request(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'client-id': { type: 'string' },
      out: { type: 'string' },
      algorithm: { type: 'string' },
      ec: { type: 'boolean' },
      curve: { type: 'string' },
      bits: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    io.out(REQUEST_HELP)
    return OK
  }
  const clientId = values['client-id']
  if (!clientId) throw new UsageError('--client-id is required')
  if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(clientId)) throw new UsageError(`--client-id: lower-case letters, digits and -, 2–63 characters; got ${clientId}`)
  const algorithm = values.algorithm ?? (values.ec ? 'ec' : 'rsa')
  if (algorithm !== 'rsa' && algorithm !== 'ec') throw new UsageError(`--algorithm: rsa or ec, got ${values.algorithm}`)
  if (values.ec && algorithm !== 'ec') throw new UsageError('--ec and --algorithm rsa contradict each other')
  let kind: RequestKey
  if (algorithm === 'ec') {
    if (values.bits !== undefined) throw new UsageError('--bits is for RSA keys; an EC key takes --curve')
    const curve = values.curve ?? 'P-256'
    if (curve !== 'P-256' && curve !== 'P-384') throw new UsageError(`--curve: P-256 or P-384, got ${curve}`)
    kind = curve
  } else {
    if (values.curve !== undefined) throw new UsageError('--curve is for EC keys (--ec)')
    kind = Number(values.bits ?? 2048)
    if (![2048, 3072, 4096].includes(kind)) throw new UsageError(`--bits: 2048, 3072 or 4096, got ${values.bits}`)
  }
  const dir = path.resolve(values.out ?? '.')
  const keyFile = path.join(dir, `${clientId}.key.pem`)
  const csrFile = path.join(dir, `${clientId}.csr.pem`)
  if (existsSync(keyFile)) throw new Error(`${keyFile} exists: a key is never overwritten (move it away first)`)
  const { keyPem, csrPem } = await createCertificateRequest(clientId, kind)
  mkdirSync(dir, { recursive: true })
  writeFileSync(keyFile, keyPem, { mode: 0o600, flag: 'wx' })
  writeFileSync(csrFile, csrPem)
  io.out(`key: ${keyFile} (keep it here, never send it)\nrequest: ${csrFile}\nnext: send ${clientId}.csr.pem to the node's operator, who runs\n  tongban systems register --client-id ${clientId} --csr ${clientId}.csr.pem …\nand returns ${clientId}.crt.pem for the key.`)
  return OK
}

async function revoke(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { reason: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help) {
    io.out(REVOKE_HELP)
    return OK
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one client id')
  const clientId = positionals[0]
  const config = loadConfig()
  const db = createPool(config.postgres, 'tongban-cli')
  try {
    const done = await revokeCertificate(db, clientId, values.reason)
    if (!done) {
      io.err(`tongban pki revoke: no system ${clientId} is registered on this node`)
      return FAILURE
    }
    // Every replica reloads its registry on this message (and every 30 s anyway).
    const redis = createRedis(config.redis)
    try {
      await redis.connect()
      await redis.publish(`${config.redis.prefix}systems`, clientId)
    } catch (e) {
      io.err(`warning: Redis unreachable (${(e as Error).message}); replicas pick the revocation up within 30 s`)
    } finally {
      redis.disconnect()
    }
    io.out(`${done.already ? 'already revoked' : 'revoked'}: ${clientId} (certificate ${done.thumbprint})`)
    return OK
  } finally {
    await db.end()
  }
}

function readSystems(file: string): SystemSubject[] {
  let systems: unknown
  try {
    systems = JSON.parse(readFileSync(file, 'utf8')).systems
  } catch (err) {
    throw new Error(`cannot read the systems of ${file}: ${(err as Error).message}`)
  }
  if (!Array.isArray(systems)) throw new Error(`${file} has no "systems" list`)
  return systems
}

// URL.hostname keeps IPv6 brackets; the certificate wants the bare address.
function publicHost(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1')
}
