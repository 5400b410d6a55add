// `npm test [-- tap args or test files]`: dependencies, PostgreSQL and Redis, the dev PKI,
// then tap over test/**/*.test.ts. The last line is always `tests: N passed, N failed`
// (assertions, from tap's summary); the exit code is tap's.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT, ensureDependencies, ensureServices } from './services.mjs'
import { buildWorkbench } from './build-workbench.mjs'

// tap's default discovery also matches `**/test.*`, so a bare `npx tap` would run this
// runner as a test (and tap inside tap): skip then.
if (process.env.TAP === '1') {
  console.log('1..0 # scripts/test.mjs runs the test suite; it is not a test')
  process.exit(0)
}

const log = (m) => console.log(`[test] ${m}`)
let summaryPrinted = false
const summary = (passed, failed) => {
  if (summaryPrinted) return
  summaryPrinted = true
  console.log(`tests: ${passed} passed, ${failed} failed`)
}

function fail(message) {
  console.error(`[test] ${message}`)
  summary(0, 1)
  process.exit(1)
}

try {
  ensureDependencies({ log })
  await ensureServices({ log })
  // test/workbench drives the built workbench in Chromium: build it when its sources are newer.
  await buildWorkbench({ log })
} catch (e) {
  fail(e.message)
}

// The tests read certificates and keys from certs/; create what is missing (idempotent).
const pki = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'pki', 'init'], { cwd: ROOT, stdio: 'inherit' })
if (pki.error || pki.status !== 0) fail(`dev PKI: tongban pki init failed (${pki.error?.message ?? `exit ${pki.status ?? pki.signal}`})`)

// tap picks its reporter from whether colours are on; we pipe its output (to count), so ask
// for colours when a person is watching, unless the caller chose.
const args = process.argv.slice(2)
const chose = args.some((a) => /^(-R|--reporter|-c$|--color|--no-color|-C$)/.test(a))
// Without files given, tap runs what --include names: the test files, not test/helpers/ nor
// this script.
const include = args.some((a) => a.startsWith('--include')) ? [] : ['--include=test/**/*.test.ts']
const tapArgs = [...(process.stdout.isTTY && !process.env.NO_COLOR && !chose ? ['--color'] : []), ...include, ...args]
const tapBin = join(ROOT, 'node_modules/.bin', process.platform === 'win32' ? 'tap.cmd' : 'tap')

// ---- run tap, echo everything, keep the summary ---------------------------------------
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g
let tail = ''
let counts = null // tap's `# { total: X, pass: Y, fail: Z, ... }`
const scan = (chunk) => {
  tail += chunk.toString('utf8')
  const lines = tail.split('\n')
  tail = lines.pop()
  for (const line of lines) look(line)
}
const look = (line) => {
  const m = /^#\s*\{\s*(total:[^}]*)\}\s*$/.exec(line.replace(ANSI, '').trim())
  if (!m) return
  const c = {}
  for (const part of m[1].split(',')) {
    const [k, v] = part.split(':').map((s) => s.trim())
    if (k && /^\d+$/.test(v)) c[k] = Number(v)
  }
  counts = c
}

const child = spawn(tapBin, tapArgs, { cwd: ROOT, stdio: ['inherit', 'pipe', 'pipe'], env: process.env })
child.stdout.on('data', (d) => {
  process.stdout.write(d)
  scan(d)
})
child.stderr.on('data', (d) => {
  process.stderr.write(d)
  scan(d)
})
// Ctrl-C reaches tap too (same process group); pass a signal on once, then wait for tap to
// finish and report.
let forwarded = false
for (const s of ['SIGINT', 'SIGTERM']) {
  process.on(s, () => {
    if (forwarded) return
    forwarded = true
    child.kill(s)
  })
}

const [code, signal, error] = await new Promise((resolve) => {
  child.on('error', (e) => resolve([null, null, e]))
  child.on('close', (c, s) => resolve([c, s, null]))
})
if (tail) look(tail)

let exitCode = code ?? 1
if (error) console.error(`[test] could not run tap (${tapBin}): ${error.message}`)
if (signal) console.error(`[test] tap was stopped by ${signal}`)

let passed = counts?.pass ?? 0
let failed = counts?.fail ?? 0
if (!counts) {
  console.error('[test] tap printed no summary (it crashed or was stopped): counting that as a failure')
  failed = Math.max(failed, 1)
}
// A crashed test file or a tap error can leave fail at 0 in the summary; never report green then.
if (exitCode !== 0 && failed === 0) failed = 1
if (exitCode === 0 && !counts) exitCode = 1
summary(passed, failed)
process.exit(exitCode)
