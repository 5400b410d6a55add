// `tongban token <clientId>`: signs a client assertion with the system's key (certs/clients)
// and exchanges it for an access token at a running node. On any failure it prints nothing
// on standard output and exits 1, so `$(tongban token …)` never yields an empty bearer
// unnoticed; standard error names the URL and the cause.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../config/index.js'
import { fetchToken, TongbanError } from '../../packages/client/src/index.js'
import { errorFrom } from '../../packages/client/src/errors.js'
import { exchange } from '../../packages/client/src/http.js'
import { describeFailure, resolveNodeUrl } from './node-url.js'
import { stdio, type Io } from './io.js'
import { parseCommand } from './args.js'

const HELP = `Usage: tongban token <clientId> [--url URL] [--key FILE] [--timeout MS] [--json]

Gets an access token for a departmental system by OAuth 2.0 client credentials with
private_key_jwt (RFC 7523) and prints it (only it: use it as $(tongban token <clientId>)).

  --url URL     the node (default: TONGBAN_URL, else http://127.0.0.1:<TONGBAN_PORT>, else
                the node npm start runs (.tongban/node.json), else the configured public URL)
  --key FILE    the system's private key (default: certs/clients/<clientId>.key.pem)
  --timeout MS  per request (default 10000)
  --json        print the whole token response as JSON

Exit status: 0 printed a token, 1 failed (nothing on standard output), 2 usage error.`

export async function run(args: string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommand(io, 'token', HELP, args, { url: { type: 'string' }, key: { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean' } })
  if (typeof parsed === 'number') return parsed
  const { values, positionals } = parsed
  if (positionals.length !== 1) {
    io.err(`tongban token: give exactly one client id\n\n${HELP}`)
    return 2
  }
  const timeoutMs = values.timeout === undefined ? 10_000 : Number(values.timeout)
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    io.err(`tongban token: --timeout must be a positive integer (ms)\n\n${HELP}`)
    return 2
  }
  const clientId = positionals[0]
  let config, node
  try {
    config = loadConfig()
    node = resolveNodeUrl({ url: values.url, config })
  } catch (e) {
    io.err(`tongban token: ${e instanceof ConfigError ? e.message : (e as Error).message}`)
    return 1
  }
  const keyFile = values.key ?? join(config.pki.clientsDir, `${clientId}.key.pem`)
  let keyPem: string
  try {
    keyPem = readFileSync(keyFile, 'utf8')
  } catch (e) {
    io.err(`tongban token: cannot read the key of ${clientId}: ${(e as Error).message} (give --key, or run npm start / tongban prepare for the dev PKI)`)
    return 1
  }
  try {
    // The assertion names the token URL the node itself publishes (GET /v1/node): the node
    // asked may be another one than this configuration's (e.g. a node of the tree).
    const audience = `${await publishedUrl(node.url, timeoutMs)}/v1/oauth/token`
    const token = await fetchToken(node.url, clientId, keyPem, audience, { timeoutMs })
    io.out(values.json ? JSON.stringify(token) : token.access_token)
    return 0
  } catch (e) {
    io.err(`tongban token: no token from ${node.url} (chosen by ${node.from}): ${describeFailure(e)}`)
    return 1
  }
}

async function publishedUrl(url: string, timeoutMs: number): Promise<string> {
  const where = `GET ${url}/v1/node`
  const res = await exchange({ method: 'GET', url: `${url}/v1/node`, headers: { accept: 'application/json' }, timeoutMs })
  if (res.status !== 200) throw errorFrom(res, { url: where })
  let node: { publicUrl?: unknown } | undefined
  try {
    node = JSON.parse(res.body.toString('utf8'))
  } catch {}
  if (typeof node?.publicUrl !== 'string') throw new TongbanError({ code: 'BAD_RESPONSE', status: res.status, detail: `${where}: not a Tongban node (no publicUrl in the answer)` })
  return node.publicUrl.replace(/\/+$/, '')
}
