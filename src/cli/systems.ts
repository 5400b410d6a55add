// `tongban systems …`: registering departmental systems at a running node from their
// certificate requests (POST /v1/systems and friends), with an operator system's credential.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig } from '../config/index.js'
import { fetchToken } from '../../packages/client/src/index.js'
import { stdio, type Io } from './io.js'
import { describeFailure, resolveNodeUrl } from './node-url.js'

const COMMON = `  --url URL        the node (default: the configured public URL)
  --operator ID    the operator system whose key signs in (default: js-operator)
  --key FILE       its private key (default: certs/clients/<operator>.key.pem)`

const HELP = `Usage: tongban systems <command>

Commands:
  register  register a system from its certificate request; writes its certificate
  renew     issue a new certificate from a new request (the old one stops working)
  revoke    revoke a system's certificate (no more tokens, on every replica)
  list      the registered systems and their certificates

${COMMON}`

const REGISTER_HELP = `Usage: tongban systems register --client-id ID --name NAME --department-code CODE
         --department-name NAME --region REGION --roles consumer[,provider…] --csr FILE [--out DIR]

Sends the request made at the department (\`tongban pki request\`) to POST /v1/systems; the
node's CA signs it. Writes ID.crt.pem and ca.crt.pem into --out (default: .) for the department.

${COMMON}`

const RENEW_HELP = `Usage: tongban systems renew --client-id ID --csr FILE [--out DIR]

${COMMON}`

const REVOKE_HELP = `Usage: tongban systems revoke --client-id ID

${COMMON}`

class UsageError extends Error {}

const options = {
  url: { type: 'string' }, operator: { type: 'string' }, key: { type: 'string' },
  'client-id': { type: 'string' }, name: { type: 'string' }, 'department-code': { type: 'string' }, 'department-name': { type: 'string' },
  region: { type: 'string' }, roles: { type: 'string' }, csr: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

export async function run(args: string[], io: Io = stdio): Promise<number> {
  const [command, ...rest] = args
  const help = command === 'register' ? REGISTER_HELP : command === 'renew' ? RENEW_HELP : command === 'revoke' ? REVOKE_HELP : HELP
  try {
    if (command === undefined) throw new UsageError('missing command')
    if (command === '--help' || command === '-h') return (io.out(HELP), 0)
    if (!['register', 'renew', 'revoke', 'list'].includes(command)) throw new UsageError(`unknown command: systems ${command}`)
    const { values } = parseArgs({ args: rest, options })
    if (values.help) return (io.out(help), 0)
    const need = (name: keyof typeof values): string => {
      const v = values[name]
      if (typeof v !== 'string' || !v) throw new UsageError(`--${name} is required`)
      return v
    }
    const config = loadConfig()
    const { url } = resolveNodeUrl({ url: values.url, config })
    const call = async (method: string, route: string, body?: unknown) => {
      const operator = values.operator ?? 'js-operator'
      const keyPem = readFileSync(values.key ?? path.join(config.pki.clientsDir, `${operator}.key.pem`), 'utf8')
      let res: Response
      try {
        const { access_token } = await fetchToken(url, operator, keyPem, `${config.node.publicUrl}/v1/oauth/token`)
        res = await fetch(`${url}${route}`, {
          method,
          headers: { authorization: `Bearer ${access_token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(30_000),
        })
      } catch (e) {
        // Every network failure names the URL and its cause (never a bare "fetch failed").
        throw new Error(describeFailure(e, `${method} ${url}${route}`))
      }
      const text = await res.text()
      let json: any
      try {
        json = text ? JSON.parse(text) : undefined
      } catch {
        throw new Error(`${method} ${url}${route}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`)
      }
      if (!res.ok) throw new Error(`${method} ${url}${route}: HTTP ${res.status} ${json?.code ?? ''}: ${json?.detail ?? text}`)
      return json
    }
    const save = (issued: { clientId: string; certificate: string; caCertificate: string; notAfter: string }) => {
      const dir = path.resolve(values.out ?? '.')
      mkdirSync(dir, { recursive: true })
      const cert = path.join(dir, `${issued.clientId}.crt.pem`)
      writeFileSync(cert, issued.certificate)
      writeFileSync(path.join(dir, 'ca.crt.pem'), issued.caCertificate)
      io.out(`certificate of ${issued.clientId}: ${cert} (valid until ${issued.notAfter}); CA: ${path.join(dir, 'ca.crt.pem')}`)
    }
    switch (command) {
      case 'register':
        save(await call('POST', '/v1/systems', {
          clientId: need('client-id'), name: need('name'),
          department: { code: need('department-code'), name: need('department-name') },
          region: need('region'), roles: need('roles').split(',').map((r) => r.trim()).filter(Boolean),
          csr: readFileSync(need('csr'), 'utf8'),
        }))
        return 0
      case 'renew':
        save(await call('POST', `/v1/systems/${encodeURIComponent(need('client-id'))}/certificate`, { csr: readFileSync(need('csr'), 'utf8') }))
        return 0
      case 'revoke':
        await call('DELETE', `/v1/systems/${encodeURIComponent(need('client-id'))}/certificate`)
        io.out(`revoked the certificate of ${values['client-id']} (every replica refuses it now)`)
        return 0
      default: {
        const { systems } = await call('GET', '/v1/systems')
        if (values.json) io.out(JSON.stringify(systems, null, 2))
        else for (const s of systems) io.out(`${s.clientId}\t${s.department.name}\t${s.roles.join(',')}\t${s.status}${s.certificate.revoked ? ' (revoked)' : ''}\tuntil ${s.certificate.notAfter}`)
        return 0
      }
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`tongban systems: ${(err as Error).message}\n`)
      io.err(help)
      return 2
    }
    io.err(`tongban systems ${command}: ${(err as Error).message}`)
    return 1
  }
}
