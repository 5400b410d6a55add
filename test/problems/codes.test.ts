// The one list of problem codes (src/problems/codes.ts) against the source: every code src/
// raises or records is listed (with the status it is raised with), every listed code is
// used (or says why not), nothing builds a code from pieces, docs/problems.md is fresh.
// Reads files only: no node, no stores.
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { PROBLEM_CODES, codeFrom, isProblemCode, statusFallback, type CodeInfo } from '../../src/problems/codes.js'
import { DOC_FILE, renderProblemDocs } from '../../scripts/gen-problem-docs.js'

const ROOT = resolve(import.meta.dirname, '../..')
const SRC = join(ROOT, 'src')
const CODES_FILE = join(SRC, 'problems/codes.ts')
const listed = PROBLEM_CODES as Record<string, CodeInfo>

// Code-shaped literals in src/ that are not problem codes, and why.
const NOT_PROBLEM_CODES: Record<string, string> = {
  JOBS_UNAVAILABLE: 'JobsUnavailableError.code (src/policy/deadlines.ts): an internal error, mapped by its callers',
  JOB_BUSY: 'JobBusyError.code (src/policy/deadlines.ts): an internal error, mapped by its callers',
  EVIDENCE_MISSING: "the SDK's own TongbanError code (client side)",
  EVIDENCE_INVALID: "the SDK's own TongbanError code (client side)",
  NETWORK_ERROR: "the SDK's own TongbanError code (client side)",
  BAD_RESPONSE: "the SDK's own TongbanError code (client side)",
  DATABASE_URL: 'an environment variable (src/config/schema.ts)',
  REDIS_URL: 'an environment variable (src/config/schema.ts)',
  LOG_LEVEL: 'an environment variable (src/config/schema.ts)',
}
// Prefixes of other namespaces: environment variables, Fastify, fast-jwt, undici and Node error codes.
const OTHER_NAMESPACES = /^(TONGBAN_|FST_|FAST_JWT_|UND_ERR_|ERR_)/

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name)
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : []
  })
}
const sources = sourceFiles(SRC)
  .filter((f) => f !== CODES_FILE)
  .map((f) => ({ file: relative(ROOT, f), text: readFileSync(f, 'utf8') }))

const lineOf = (text: string, index: number) => text.slice(0, index).split('\n').length
const sites = (re: RegExp) =>
  sources.flatMap(({ file, text }) => [...text.matchAll(re)].map((m) => ({ at: `${file}:${lineOf(text, m.index!)}`, m })))

t.test('every code src/ raises in a Problem is listed, with the status it is raised with', async (t) => {
  const raised = sites(/new Problem\(\s*(\d{3}|[^,()]+),\s*'([A-Z][A-Z0-9_]*)'/g)
  t.ok(raised.length > 150, `${raised.length} literal Problem sites`)
  for (const { at, m } of raised) {
    const [, status, code] = m
    const info = listed[code]
    if (!info) {
      t.fail(`${at}: ${code} is not listed in src/problems/codes.ts`)
      continue
    }
    if (/^\d{3}$/.test(status) && !info.status.includes(Number(status))) t.fail(`${at}: ${code} raised with ${status}, listed with ${info.status.join(', ')}`)
  }
  // The token endpoint's client-authentication refusals go through one helper (401).
  for (const { at, m } of sites(/unauthorized\('([A-Z][A-Z0-9_]*)'/g)) {
    if (!listed[m[1]]?.status.includes(401)) t.fail(`${at}: ${m[1]} is not listed as a 401`)
  }
})

t.test('every audit reason src/ sets is a listed code', async (t) => {
  for (const { at, m } of sites(/\breason\s*=\s*'([A-Z][A-Z0-9_]*)'/g)) {
    if (!listed[m[1]]) t.fail(`${at}: audit reason ${m[1]} is not listed`)
  }
})

t.test('every code-shaped literal in src/ is a listed code, or known to be something else', async (t) => {
  const unlisted = new Map<string, Set<string>>()
  for (const { at, m } of sites(/(['"`])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\1/g)) {
    const s = m[2]
    if (listed[s] || NOT_PROBLEM_CODES[s] || OTHER_NAMESPACES.test(s)) continue
    unlisted.set(s, (unlisted.get(s) ?? new Set()).add(at))
  }
  t.same(Object.fromEntries([...unlisted].map(([k, v]) => [k, [...v]])), {}, 'no unlisted code-shaped literal')
})

t.test('no code is built from pieces outside codes.ts (typed maps instead)', async (t) => {
  // A template that glues a code together (`${base}_MISSING`, `AUDIT_INTEGRITY_${kind}`) escapes the typecheck.
  // The SDK is exempt: it runs in the client and names the status of any answer without a code.
  const glued = sites(/`[A-Z][A-Z0-9_]*_\$\{|\}_[A-Z][A-Z0-9_]*`/g)
    .filter(({ at }) => !at.startsWith('packages/client/'))
    .map(({ at, m }) => `${at}: ${m[0]}`)
  t.same(glued, [], 'no glued codes')
})

t.test('every listed code is used somewhere in src/, or says why not', async (t) => {
  const all = sources.map((s) => s.text).join('\n')
  let unused = 0
  for (const [code, info] of Object.entries(listed)) {
    const used = all.includes(`'${code}'`) || all.includes(`"${code}"`)
    if (info.reserved) t.notOk(used, `${code} is used: drop its reserved note`)
    else if (!used) {
      unused++
      t.fail(`${code} is listed but never used in src/ (remove it, or mark it reserved with a reason)`)
    }
  }
  t.equal(unused, 0, `all ${Object.keys(listed).length} listed codes are used`)
})

t.test('every entry is complete', async (t) => {
  for (const [code, c] of Object.entries(listed)) {
    t.match(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/, `${code}: shape`)
    t.ok(c.status.length > 0 && c.status.every((s) => (s >= 400 && s <= 599) || (s === 200 && (code.startsWith('AUDIT_INTEGRITY_') || code.startsWith('LICENCE_')))), `${code}: statuses ${c.status}`)
    t.ok(c.en.length > 5, `${code}: English meaning`)
    t.match(c.zh, /[\u4e00-\u9fff]/, `${code}: Chinese wording`)
    t.ok(c.action.length > 3, `${code}: what to do`)
  }
  t.equal(PROBLEM_CODES.POLICY_NO_GRANT.zh, '未获授权（无有效共享授权）')
  t.equal(PROBLEM_CODES.INPUT_INVALID_ID_NUMBER.zh, '身份证号码校验未通过')
})

t.test('codes from another node: known ones kept, anything else HTTP_<status>', async (t) => {
  t.equal(isProblemCode('POLICY_NO_GRANT'), true)
  t.equal(isProblemCode('HTTP_502'), true)
  t.equal(isProblemCode('HTTP_5020'), false)
  t.equal(isProblemCode('POLICY_SOMETHING_NEW'), false)
  t.equal(isProblemCode('toString'), false, 'not an inherited property')
  t.equal(isProblemCode(42), false)
  t.equal(codeFrom('QUOTA_EXCEEDED', 429), 'QUOTA_EXCEEDED')
  t.equal(codeFrom('POLICY_SOMETHING_NEW', 403), 'HTTP_403')
  t.equal(codeFrom(undefined, 502), 'HTTP_502')
  t.equal(statusFallback(404), 'HTTP_404')
})

t.test('docs/problems.md is generated from codes.ts and up to date', async (t) => {
  const doc = readFileSync(DOC_FILE, 'utf8')
  t.equal(doc, renderProblemDocs(), 'stale: run npm run gen:problem-docs')
  for (const code of Object.keys(listed)) t.ok(doc.includes(`| \`${code}\` |`), `${code} in the table`)
})
