// `tongban evidence verify`: checks a response's Tongban-Evidence offline, as a consumer or
// an auditor would, with nothing but the node's certificate and the trusted CA.
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { verifyEvidence } from '../evidence/evidence.js'

const USAGE = `Usage: tongban evidence verify --header <value|@file> --body <file> --cert <pem file> [--cert ...] [--ca <pem file>] [--json]

Checks that a Tongban-Evidence header covers the exact response body: the body digest, the
Merkle inclusion proof, the checkpoint signature and (with --ca) the node certificate chain.

  --header  the header value, or @file holding it
  --body    file with the exact response body bytes
  --cert    node certificate PEM (repeatable; the one named by the checkpoint kid is used)
  --ca      trusted root CA certificate PEM
  --json    print {"ok", "reason"?, "record"?}

Exit status: 0 valid, 1 not valid, 2 usage error.
`

/** `args` are the words after `tongban evidence`. */
export async function run(args: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        header: { type: 'string' },
        body: { type: 'string' },
        cert: { type: 'string', multiple: true },
        ca: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    return usageError((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  if (positionals.length !== 1 || positionals[0] !== 'verify') return usageError('expected the subcommand "verify"')
  if (!values.header || !values.body || !values.cert?.length) {
    return usageError('--header, --body and --cert are required')
  }

  let header: string, body: Buffer, certificates: string[], caCertificate: string | undefined
  try {
    header = values.header.startsWith('@') ? (await readFile(values.header.slice(1), 'utf8')).trim() : values.header
    body = await readFile(values.body)
    certificates = await Promise.all(values.cert.map((f) => readFile(f, 'utf8')))
    caCertificate = values.ca === undefined ? undefined : await readFile(values.ca, 'utf8')
  } catch (err) {
    return usageError((err as Error).message)
  }

  const result = verifyEvidence({ header, body, certificates, caCertificate })
  if (values.json) {
    const out = result.ok ? { ok: true, record: result.evidence.record } : { ok: false, reason: result.reason }
    process.stdout.write(`${JSON.stringify(out)}\n`)
  } else if (result.ok) {
    const { record, index, size, checkpoint: cp } = result.evidence
    const where = `checkpoint ${cp.node}/${cp.chain}#${cp.seq} (${cp.alg})`
    process.stdout.write(`valid: request ${record.requestId} is leaf ${index} of ${size} in ${where}\n`)
  } else {
    process.stdout.write(`invalid: ${result.reason}${result.detail ? ` (${result.detail})` : ''}\n`)
  }
  return result.ok ? 0 : 1
}

function usageError(message: string): number {
  process.stderr.write(`tongban evidence: ${message}\n\n${USAGE}`)
  return 2
}
