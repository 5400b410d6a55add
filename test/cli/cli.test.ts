// The `tongban` command as an operator or integrator runs it: --help on every command,
// consistent exit codes (0 ok, 1 failure, 2 usage), --json output; `node status`, `batch`,
// `token` and `evidence verify` against a running gateway, happy and error paths. The
// binary (bin/tongban.js) runs in child processes for the top level, every command's help
// and end-to-end checks; the rest calls the commands' run() in this process (each child
// process compiles the CLI anew, which is slow on a busy machine).
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startNode, context, ROOT } from '../helpers/harness.js'
import { freePort } from '../helpers/gateway-process.js'
import { samplePersons } from '../../dev/providers/population.js'
import { run as nodeCommand } from '../../src/cli/node.js'
import { run as batchCommand } from '../../src/cli/batch.js'
import { run as tokenCommand } from '../../src/cli/token.js'

t.setTimeout(300_000)

const h = await startNode({ tag: 'cli' })
await h.app.listen({ port: 0, host: '127.0.0.1' })
const url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`
t.teardown(() => h.close())
// Commands run in this process read their configuration from the environment, as the
// child processes do: the test node's.
Object.assign(process.env, h.env)
const dir = mkdtempSync(join(tmpdir(), 'tongban-cli-'))
const people = samplePersons(30)

interface Run { code: number | null; stdout: string; stderr: string }
/** A command's run() in this process, its output collected. */
const inProcess = async (run: (args: string[], io: { out(s: string): void; err(s: string): void }) => Promise<number>, ...args: string[]): Promise<Run> => {
  let stdout = ''
  let stderr = ''
  const code = await run(args, { out: (s) => (stdout += s + '\n'), err: (s) => (stderr += s + '\n') })
  return { code, stdout, stderr }
}
const node = (...args: string[]) => inProcess(nodeCommand, ...args)
const batch = (...args: string[]) => inProcess(batchCommand, ...args)
const tongban = (...args: string[]): Promise<Run> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/tongban.js'), ...args], { cwd: ROOT, env: { ...process.env, ...h.env, TONGBAN_LOG_LEVEL: 'silent' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })

t.test('help: the top level lists every command, and each has --help', async (t) => {
  const top = await tongban('--help')
  t.equal(top.code, 0)
  const commands = [...top.stdout.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1])
  for (const c of ['prepare', 'pki', 'catalog', 'token', 'evidence', 'node', 'batch']) t.ok(commands.includes(c), `lists ${c}`)
  const helps = await Promise.all(commands.map((c) => tongban(c, '--help')))
  commands.forEach((c, i) => {
    t.equal(helps[i].code, 0, `tongban ${c} --help exits 0`)
    t.match(helps[i].stdout, /Usage: tongban/, `tongban ${c} --help prints its usage`)
  })
  const [none, unknown] = await Promise.all([tongban(), tongban('frobnicate')])
  t.equal(none.code, 2, 'no command: usage, exit 2')
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command/)
})

t.test('node status: ready, identified, queues; unreachable and usage errors', async (t) => {
  const ok = await tongban('node', 'status', '--url', url, '--json') // the real binary, end to end
  t.equal(ok.code, 0, ok.stderr)
  const s = JSON.parse(ok.stdout)
  t.equal(s.live, true)
  t.equal(s.ready, true)
  t.same(s.readiness, { postgres: 'ok', redis: 'ok' })
  t.equal(s.node.id, h.config.node.id)
  t.equal(s.node.kid, h.app.identity.kid)
  t.ok(s.certificate.daysLeft > 30, 'certificate expiry reported')
  t.ok(s.queues?.batches, 'queue depths (loopback may read /metrics)')
  const text = await node('status', '--url', url)
  t.equal(text.code, 0)
  t.match(text.stdout, /ready \(postgres ok, redis ok\)/)
  t.match(text.stdout, new RegExp(`node +${h.config.node.id}`))

  const down = await node('status', '--url', `http://127.0.0.1:${await freePort()}`, '--json', '--timeout', '2000')
  t.equal(down.code, 1, 'unreachable: exit 1')
  t.match(JSON.parse(down.stdout).error, /unreachable/)
  t.equal((await node('stats')).code, 2)
  t.equal((await node('status', '--timeout', 'soon')).code, 2)
  t.equal((await node('status', '--frobnicate')).code, 2)
})

t.test('batch submit --wait --out, status, results; usage and API errors', async (t) => {
  const file = join(dir, 'items.ndjson')
  writeFileSync(file, people.map((p) => JSON.stringify({ idNumber: p.idNumber, name: p.name })).join('\n') + '\n')
  const out = join(dir, 'results.ndjson')
  const common = ['--url', url, '--client', 'jn-civil-affairs']
  const sub = await batch('submit', file, '--service', 'identity', '--purpose', 'SA-01', '--case-id', 'JN-CLI-1', '--wait', '--out', out, '--json', ...common)
  t.equal(sub.code, 0, sub.stderr)
  const r = JSON.parse(sub.stdout)
  t.equal(r.status, 'completed')
  t.equal(r.succeeded, 30)
  t.equal(r.downloaded, 30)
  const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  t.equal(lines.length, 30)
  t.ok(lines.every((l) => l.body.match === true && typeof l.evidence === 'string'))

  const status = await batch('status', r.id, '--json', ...common)
  t.equal(status.code, 0)
  t.equal(JSON.parse(status.stdout).done, 30)
  const results = await batch('results', r.id, ...common)
  t.equal(results.code, 0)
  t.equal(results.stdout.trim().split('\n').length, 30, 'results to stdout')

  const jsonFile = join(dir, 'items.json')
  writeFileSync(jsonFile, JSON.stringify({ items: people.slice(0, 3).map((p) => ({ idNumber: p.idNumber, name: p.name })) }))
  const noWait = await batch('submit', jsonFile, '--service', 'identity', '--purpose', 'SA-01', '--case-id', 'JN-CLI-2', ...common)
  t.equal(noWait.code, 0, noWait.stderr)
  t.match(noWait.stdout, /submitted batch [0-9A-Z]{26}: queued; 0\/3 done/)

  t.equal((await batch('submit', file, '--service', 'identity', ...common)).code, 2, 'no purpose: usage')
  t.equal((await batch('submit', join(dir, 'missing.ndjson'), '--service', 'identity', '--purpose', 'SA-01', '--case-id', 'X', ...common)).code, 2)
  t.equal((await batch('submit', file, '--purpose', 'SA-01', '--case-id', 'X', ...common)).code, 2, 'no target: usage')
  t.equal((await batch('frobnicate', 'x')).code, 2)
  const denied = await batch('submit', file, '--resource', '301002/00001', '--operation', 'query', '--purpose', 'SA-01', '--case-id', 'X', '--json', ...common)
  t.equal(denied.code, 1, 'refused by the gateway: exit 1')
  t.equal(JSON.parse(denied.stdout).error.code, 'POLICY_SHARE_NONE')
  const unknown = await batch('status', '01AAAAAAAAAAAAAAAAAAAAAAAA', ...common)
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /BATCH_NOT_FOUND/)
})

t.test('token and evidence verify, happy and error paths', async (t) => {
  const tok = await inProcess(tokenCommand, 'jn-civil-affairs', '--url', url, '--json')
  t.equal(tok.code, 0, tok.stderr)
  const { access_token: accessToken } = JSON.parse(tok.stdout)
  t.match(accessToken, /^ey/)
  t.equal((await inProcess(tokenCommand, 'no-such-system', '--url', url)).code, 1)
  t.equal((await inProcess(tokenCommand)).code, 2)

  const res = await request(`${url}/v1/verify/identity`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', ...context() },
    body: JSON.stringify({ idNumber: people[0].idNumber, name: people[0].name }),
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  const bodyFile = join(dir, 'body.json')
  const headerFile = join(dir, 'evidence.txt')
  writeFileSync(bodyFile, body)
  writeFileSync(headerFile, String(res.headers['tongban-evidence']))
  const args = ['evidence', 'verify', '--header', `@${headerFile}`, '--body', bodyFile, '--cert', h.config.pki.certFile, '--ca', h.config.pki.caFile]
  const tamperedFile = join(dir, 'tampered.json')
  writeFileSync(tamperedFile, body.toString().replace('true', 'false'))
  const [valid, invalid, usage] = await Promise.all([
    tongban(...args, '--json'),
    tongban(...args.map((a) => (a === bodyFile ? tamperedFile : a)), '--json'),
    tongban('evidence', 'verify', '--body', bodyFile),
  ])
  t.equal(valid.code, 0, valid.stdout + valid.stderr)
  t.equal(JSON.parse(valid.stdout).ok, true)
  t.equal(invalid.code, 1)
  t.equal(JSON.parse(invalid.stdout).reason, 'body-digest-mismatch')
  t.equal(usage.code, 2)
})
