// Process entry of the development identity provider (npm start). Env: DEV_OIDC_PORT
// (default 8455); the issuer is http://127.0.0.1:<port>, the gateway's default people.issuer.
import { startDevOidcProvider } from './provider.js'

const raw = process.env.DEV_OIDC_PORT
const port = raw === undefined || raw === '' ? 8455 : Number(raw)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`DEV_OIDC_PORT must be a port number, got ${JSON.stringify(raw)}`)
  process.exit(2)
}
const oidc = await startDevOidcProvider({ port })
console.log(`development identity provider (OpenID Connect) at ${oidc.issuer} — people admin, police, land, applicant, auditor; password tongban`)
for (const s of ['SIGINT', 'SIGTERM'] as const) {
  process.once(s, () => {
    oidc.close().then(() => process.exit(0), () => process.exit(1))
  })
}
