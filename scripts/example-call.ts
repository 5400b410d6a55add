// One real call against a running gateway, as a departmental system would make it: a token
// for `jn-civil-affairs` (client assertion signed with certs/clients/jn-civil-affairs.key.pem),
// POST /v1/verify/identity for person 0 of the synthetic population, and the response's
// Tongban-Evidence checked against the node certificate and the dev root CA.
// `npm start` runs it once the gateway is ready; it also runs on its own:
//
//   node --import tsx scripts/example-call.ts [--url http://127.0.0.1:8443] [--token-command CMD]
//
// Exit code 0 when the call answered 200 and its evidence verified.
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/config/index.js'
import { fetchToken } from '../packages/client/src/token.js'
import { verifyEvidence, decodeEvidence } from '../src/evidence/evidence.js'
import { person } from '../dev/providers/population.js'

const CLIENT_ID = 'jn-civil-affairs'
const PURPOSE = `SA-01;${encodeURIComponent('最低生活保障资格审核')}`
const CASE_ID = 'JN-2026-0001'

const { values } = parseArgs({ options: { url: { type: 'string' }, 'token-command': { type: 'string' } } })
const config = loadConfig()
// The CA of what signs the evidence (the SM2 CA on an SM2 node), trusted out of band.
const caFile = config.pki.signCaFile ?? config.pki.caFile
const certFile = config.pki.signCertFile ?? config.pki.certFile
const base = (values.url ?? config.node.publicUrl).replace(/\/+$/, '')
const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

async function main(): Promise<number> {
  const nodeRes = await fetch(`${base}/v1/node`)
  if (!nodeRes.ok) throw new Error(`GET ${base}/v1/node: ${nodeRes.status}`)
  const node = (await nodeRes.json()) as { id: string; publicUrl: string; certificate: string }

  // The assertion's audience is the token endpoint as the node names it (its public URL).
  // The system's key of the node's tree (certs/sm2/clients on an SM2 node: an SM2SM3 assertion).
  const keyFile = join(config.pki.clientsDir, `${CLIENT_ID}.key.pem`)
  const token = await fetchToken(base, CLIENT_ID, readFileSync(keyFile, 'utf8'), `${node.publicUrl.replace(/\/+$/, '')}/v1/oauth/token`)

  const p0 = person(0)
  const payload = JSON.stringify({ idNumber: p0.idNumber, name: p0.name })
  const url = `${base}/v1/verify/identity`
  const headers = {
    authorization: `Bearer ${token.access_token}`,
    'content-type': 'application/json',
    'tongban-purpose': PURPOSE,
    'tongban-case-id': CASE_ID,
  }
  const res = await fetch(url, { method: 'POST', headers, body: payload })
  const body = Buffer.from(await res.arrayBuffer())

  const out: string[] = []
  // The commands to repeat it: the token by the CLI, the answer's headers and body saved
  // apart (curl -D, -o) so that the evidence can be checked offline on exactly those bytes.
  const tokenCommand = values['token-command'] ?? `node bin/tongban.js token ${CLIENT_ID} --url ${base}`
  out.push(`Example call as ${CLIENT_ID} (token valid ${token.expires_in} s). To repeat it:`)
  out.push('')
  out.push(
    [
      `curl -sS -X POST ${shq(url)}`,
      `  -H "authorization: Bearer $(${tokenCommand})"`,
      ...Object.entries(headers).filter(([k]) => k !== 'authorization').map(([k, v]) => `  -H ${shq(`${k}: ${v}`)}`),
      `  --data-raw ${shq(payload)}`,
      `  -D answer.headers -o answer.json`,
    ].join(' \\\n'),
  )
  out.push(`node bin/tongban.js evidence verify --header @answer.headers --body answer.json \\\n  --cert ${shq(relative(process.cwd(), certFile))} --ca ${shq(relative(process.cwd(), caFile))}`)
  out.push('')
  out.push(`person 0 of the synthetic population: ${p0.name} ${p0.idNumber}; purpose SA-01 (最低生活保障资格审核), case ${CASE_ID}`)
  out.push(`answer: HTTP ${res.status}  ${body.toString('utf8')}`)
  out.push(`request id: ${res.headers.get('tongban-request-id') ?? '(none)'}`)

  const header = res.headers.get('tongban-evidence')
  let ok = res.status === 200
  if (!header) {
    out.push('evidence: no Tongban-Evidence header in the answer')
    ok = false
  } else {
    const ev = decodeEvidence(header)
    const cp = ev.checkpoint
    out.push(
      `evidence: checkpoint seq ${cp.seq} of chain ${cp.chain}, batch of ${cp.size} record(s) (this one at index ${ev.index}), ` +
        `root ${cp.root.slice(0, 16)}…, ${cp.alg} by kid ${cp.kid}`,
    )
    const v = verifyEvidence({ header, body, certificates: [node.certificate], caCertificate: readFileSync(caFile, 'utf8') })
    if (v.ok) {
      out.push(`          verified: body digest, inclusion proof, checkpoint signature, node certificate chains to ${caFile}${ev.v === 2 ? ' (evidence v2: SM3)' : ''}`)
    } else {
      out.push(`          NOT verified: ${v.reason}${v.detail ? ` (${v.detail})` : ''}`)
      ok = false
    }
  }
  console.log(out.join('\n'))
  return ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const cause = (e as { cause?: { code?: string } }).cause?.code
    console.error(`example call failed: ${(e as Error).message}${cause ? ` (${cause}: is the gateway running at ${base}?)` : ''}`)
    process.exit(1)
  },
)
