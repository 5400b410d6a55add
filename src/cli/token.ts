// `tongban token <clientId>`: signs a client assertion with the system's key (certs/clients)
// and exchanges it for an access token at a running node.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig } from '../config/index.js'
import { fetchToken } from '../../packages/client/src/token.js'

const HELP = `Usage: tongban token <clientId> [--url URL] [--key FILE] [--json]

Gets an access token for a departmental system by OAuth 2.0 client credentials with
private_key_jwt (RFC 7523) and prints it.

  --url URL     the node (default: the configured public URL, e.g. http://127.0.0.1:8443)
  --key FILE    the system's private key (default: certs/clients/<clientId>.key.pem)
  --json        print the whole token response as JSON`

export async function run(args: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { url: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    })
  } catch (e) {
    console.error(`tongban token: ${(e as Error).message}\n\n${HELP}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    console.log(HELP)
    return 0
  }
  if (positionals.length !== 1) {
    console.error(`tongban token: give exactly one client id\n\n${HELP}`)
    return 2
  }
  const clientId = positionals[0]
  const config = loadConfig()
  const url = (values.url ?? config.node.publicUrl).replace(/\/$/, '')
  try {
    const keyPem = readFileSync(values.key ?? join(config.pki.dir, 'clients', `${clientId}.key.pem`), 'utf8')
    // The assertion names the token URL the node itself publishes (GET /v1/node): with --url
    // the node asked may be another one than this configuration's (e.g. a node of the tree).
    const publicUrl = values.url ? await publishedUrl(url).catch(() => null) : null
    const token = await fetchToken(url, clientId, keyPem, `${publicUrl ?? config.node.publicUrl}/v1/oauth/token`)
    console.log(values.json ? JSON.stringify(token) : token.access_token)
    return 0
  } catch (e) {
    console.error(`tongban token: ${(e as Error).message}`)
    return 1
  }
}

async function publishedUrl(url: string): Promise<string | null> {
  const res = await fetch(`${url}/v1/node`, { signal: AbortSignal.timeout(5000) })
  if (!res.ok) return null
  const node = (await res.json()) as { publicUrl?: unknown }
  return typeof node.publicUrl === 'string' ? node.publicUrl.replace(/\/$/, '') : null
}
