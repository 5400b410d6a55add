// `tongban batch …`: bulk verification from the command line, through the SDK (so every
// downloaded result is checked against its evidence): submit a JSON or NDJSON file, follow
// it with a progress bar, download the results, cancel.
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig, type Config } from '../config/index.js'
import { describeFailure, resolveNodeUrl } from './node-url.js'
import { TongbanClient, TongbanError, type BatchProgress, type BatchTarget } from '../../packages/client/src/index.js'
import { progressBar } from './progress.js'
import { stdio, type Io } from './io.js'
import { parseCommand } from './args.js'

const HELP = `Usage: tongban batch <command> [options]

Commands:
  submit <file>   submit a bulk verification: NDJSON (one item a line) or JSON (an array,
                  or {"items": [...]}); --service S, or --resource CODE --operation OP
  status <id>     progress: done, succeeded, failed, rate, ETA
  results <id>    download the results as NDJSON, every line's evidence verified
  cancel <id>     cancel: no item starts after this

Options:
  --client ID         the departmental system (key and certificate from certs/clients/ID.*)
  --key FILE --cert FILE   its credential as PEM files instead
  --p12 FILE --password PW its credential as PKCS#12 instead
  --ca FILE           trusted root CA (default: the configured CA, certs/ca.crt.pem)
  --url URL           the node (default: TONGBAN_URL, TONGBAN_PORT, the node npm start runs, the configured public URL)
  --purpose CODE      purpose code (submit; required)
  --case-id ID        case number (submit; required)
  --operator ID       the civil servant (submit)
  --wait              submit: follow until the batch has ended
  --out FILE          submit --wait / results: write the results there (default: stdout)
  --no-verify         results: do not check evidence
  --json              machine-readable output
  -h, --help

Exit status: 0 done (submit --wait: completed), 1 failure (or cancelled), 2 usage error.`

class UsageError extends Error {}

const OPTIONS = {
  client: { type: 'string' },
  key: { type: 'string' },
  cert: { type: 'string' },
  p12: { type: 'string' },
  password: { type: 'string' },
  ca: { type: 'string' },
  url: { type: 'string' },
  service: { type: 'string' },
  resource: { type: 'string' },
  operation: { type: 'string' },
  purpose: { type: 'string' },
  'case-id': { type: 'string' },
  operator: { type: 'string' },
  wait: { type: 'boolean' },
  out: { type: 'string' },
  'no-verify': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values']

function makeClient(v: Values, config: Config): TongbanClient {
  const { url } = resolveNodeUrl({ url: v.url, config })
  const caFile = v.ca ?? config.pki.caFile
  const ca = existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined
  let credential
  if (v.p12) {
    if (v.password === undefined) throw new UsageError('--p12 needs --password')
    credential = { p12: readFileSync(v.p12), password: v.password, clientId: v.client }
  } else if (v.key) {
    credential = { keyFile: v.key, certFile: v.cert, clientId: v.client }
  } else if (v.client) {
    const base = join(config.pki.clientsDir, v.client)
    credential = { keyFile: `${base}.key.pem`, certFile: `${base}.crt.pem`, clientId: v.client }
  } else throw new UsageError('say who you are: --client ID, --key/--cert or --p12/--password')
  return new TongbanClient({ baseUrl: url, credential, ca, verifyEvidence: !v['no-verify'] })
}

/** Items from a file: NDJSON (one a line) or JSON (an array, or an object with items). */
async function readItems(file: string, onCount: (n: number) => void): Promise<unknown[]> {
  const head = readFileSync(file, { encoding: 'utf8', flag: 'r' }).slice(0, 1).trim()
  if (head === '[' || head === '{') {
    try {
      const all = JSON.parse(readFileSync(file, 'utf8'))
      const items = Array.isArray(all) ? all : all?.items
      if (Array.isArray(items)) {
        onCount(items.length)
        return items
      }
    } catch {
      // An NDJSON file also starts with '{': read it line by line below.
    }
  }
  const items: unknown[] = []
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity })
  let line = 0
  for await (const text of rl) {
    line++
    if (!text.trim()) continue
    try {
      items.push(JSON.parse(text))
    } catch {
      throw new Error(`${file}: line ${line} is not JSON`)
    }
    if (items.length % 1000 === 0) onCount(items.length)
  }
  onCount(items.length)
  return items
}

const summary = (p: BatchProgress) =>
  `batch ${p.id}: ${p.status}; ${p.done}/${p.total} done (${p.succeeded} succeeded, ${p.failed} failed)${p.itemsPerSecond ? `, ${p.itemsPerSecond}/s` : ''}`

async function download(client: TongbanClient, id: string, out: string | undefined, total: number | undefined, verify: boolean, io: Io): Promise<number> {
  const sink = out ? createWriteStream(out) : null
  const bar = progressBar('results', { enabled: !!out && process.stderr.isTTY })
  let n = 0
  for await (const r of client.batches.results(id, { verify })) {
    const line = JSON.stringify(r)
    if (!sink) io.out(line)
    else if (!sink.write(line + '\n')) await once(sink, 'drain')
    bar.update(++n, total)
  }
  bar.done()
  if (sink) {
    sink.end()
    await once(sink, 'finish')
  }
  return n
}

export async function run(args: string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommand(io, 'batch', HELP, args, OPTIONS)
  if (typeof parsed === 'number') return parsed
  const { values: v, positionals } = parsed
  const [command, arg, ...rest] = positionals
  let client: TongbanClient | undefined
  try {
    if (!command) throw new UsageError('missing command')
    if (!['submit', 'status', 'results', 'cancel'].includes(command)) throw new UsageError(`unknown command: batch ${command}`)
    if (!arg || rest.length) throw new UsageError(`batch ${command} takes exactly one ${command === 'submit' ? 'file' : 'batch id'}`)
    let config: Config
    try {
      config = loadConfig()
    } catch (e) {
      if (e instanceof ConfigError) throw new Error(e.message)
      throw e
    }
    const verify = !v['no-verify']

    if (command === 'submit') {
      const target: BatchTarget | null = v.service ? { service: v.service } : v.resource && v.operation ? { resource: v.resource, operation: v.operation } : null
      if (!target) throw new UsageError('submit needs --service, or --resource and --operation')
      if (!v.purpose || !v['case-id']) throw new UsageError('submit needs --purpose and --case-id')
      if (!existsSync(arg)) throw new UsageError(`no such file: ${arg}`)
      client = makeClient(v, config)
      const reading = progressBar('reading', { enabled: !v.json && process.stderr.isTTY })
      const items = await readItems(arg, (n) => reading.update(n))
      reading.done()
      if (items.length === 0) throw new UsageError(`${arg} holds no items`)
      const submitted = await client.batches.submit(target, items, { purpose: v.purpose, caseId: v['case-id'], operator: v.operator })
      if (!v.wait) {
        io.out(v.json ? JSON.stringify(submitted) : `submitted ${summary(submitted)}`)
        return 0
      }
      const bar = progressBar(`batch ${submitted.id}`, { enabled: !v.json && process.stderr.isTTY })
      const end = await client.batches.wait(submitted.id, { intervalMs: 500, onProgress: (p) => bar.update(p.done, p.total, p.failed ? `(${p.failed} failed)` : '') })
      bar.done()
      let downloaded: number | undefined
      if (v.out) downloaded = await download(client, end.id, v.out, end.done, verify, io)
      if (v.json) io.out(JSON.stringify({ ...end, ...(downloaded !== undefined ? { downloaded, out: v.out } : {}) }))
      else io.out(`${summary(end)}${v.out ? `; ${downloaded} results${verify ? ' (evidence verified)' : ''} in ${v.out}` : ''}`)
      return end.status === 'completed' ? 0 : 1
    }

    client = makeClient(v, config)
    if (command === 'status') {
      const p = await client.batches.get(arg)
      io.out(v.json ? JSON.stringify(p) : `${summary(p)}${p.etaSeconds ? `, eta ${p.etaSeconds}s` : ''}`)
      return 0
    }
    if (command === 'cancel') {
      const p = await client.batches.cancel(arg)
      io.out(v.json ? JSON.stringify(p) : `cancelled ${summary(p)}`)
      return 0
    }
    const p = await client.batches.get(arg)
    const n = await download(client, arg, v.out, p.done, verify, io)
    if (v.out) io.out(v.json ? JSON.stringify({ id: arg, downloaded: n, out: v.out, verified: verify }) : `${n} results${verify ? ' (evidence verified)' : ''} in ${v.out}`)
    return 0
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`tongban batch: ${e.message}\n\n${HELP}`)
      return 2
    }
    const msg = e instanceof TongbanError ? describeFailure(e) : (e as Error).message
    if (v.json) io.out(JSON.stringify({ ok: false, error: e instanceof TongbanError ? { code: e.code, status: e.status, requestId: e.requestId, detail: e.detail } : { message: msg } }))
    io.err(`tongban batch ${command}: ${msg}`)
    return 1
  } finally {
    await client?.close()
  }
}
