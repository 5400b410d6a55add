// `tongban evidence verify`: checks a response's Tongban-Evidence offline, as a consumer or
// an auditor would, with nothing but the node's certificate and the trusted CA.
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { verifyEvidence } from '../evidence/evidence.js'

const USAGE = `Usage: tongban evidence verify --header <value|@file> --body <file> --cert <pem file> [--cert ...] [--ca <pem file>] [--json]

Checks that a Tongban-Evidence header covers the exact response body: the body digest, the
Merkle inclusion proof, the checkpoint signature and (with --ca) the node certificate chain.

  --header  the header value, or @file holding it: the bare value, or the answer's headers
            as \`curl -D <file>\` (or --dump-header) saves them; the Tongban-Evidence line
            of the last response in it is used
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
    header = values.header.startsWith('@') ? evidenceFrom(await readFile(values.header.slice(1), 'utf8'), values.header.slice(1)) : values.header.trim()
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

/**
 * The header value from a file: the value itself, or a header dump as curl -D writes it
 * (status line, then `Name: value` lines, CRLF; one block per response, e.g. a 100 Continue
 * before the answer), of which the last response's Tongban-Evidence counts.
 */
export function evidenceFrom(text: string, file: string): string {
  const trimmed = text.replace(/^\uFEFF/, '').trim()
  if (!/^HTTP\/\d/.test(trimmed)) return trimmed.replace(/^tongban-evidence:\s*/i, '')
  const blocks = trimmed.split(/\r?\n\r?\n(?=HTTP\/\d)/)
  const last = blocks[blocks.length - 1]
  const line = last.split(/\r?\n/).find((l) => /^tongban-evidence\s*:/i.test(l))
  if (!line) throw new Error(`${file}: the saved headers hold no Tongban-Evidence (the answer was: ${last.split(/\r?\n/)[0].trim()})`)
  return line.slice(line.indexOf(':') + 1).trim()
}

function usageError(message: string): number {
  process.stderr.write(`tongban evidence: ${message}\n\n${USAGE}`)
  return 2
}
