// Generates docs/problems.md — the table of every problem code — from src/problems/codes.ts,
// the one list the gateway's Problems are typed against. test/problems/codes.test.ts
// renders it again and fails when the file is stale.
//
//   npm run gen:problem-docs              write docs/problems.md
//   npm run gen:problem-docs -- --check   exit 1 if it is not up to date
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PROBLEM_CODES, STATUS_FALLBACK, type CodeInfo } from '../src/problems/codes.js'

const ROOT = resolve(import.meta.dirname, '..')
export const DOC_FILE = join(ROOT, 'docs/problems.md')

// A table cell: no line breaks, and a `|` would end the cell.
const cell = (s: string) => s.replace(/\s+/g, ' ').replaceAll('|', '\\|')

// By status; the audit-only reasons (200) last.
const order = (c: CodeInfo) => (c.status[0] < 400 ? 1000 : c.status[0])

export function renderProblemDocs(): string {
  const rows = (Object.entries(PROBLEM_CODES) as Array<[string, CodeInfo]>)
    .map(([code, c]) => ({ code, ...c, statusText: c.status.join(', ') }))
    .sort((a, b) => order(a) - order(b) || a.code.localeCompare(b.code))
  const f = STATUS_FALLBACK
  return [
    '# Problem codes',
    '',
    '<!-- Generated from src/problems/codes.ts by `npm run gen:problem-docs`: edit codes.ts, not this file. -->',
    '',
    'Every error the gateway answers is RFC 9457 `application/problem+json` with a stable `code`',
    '(`type` is `urn:tongban:problem:<code>`); clients switch on `code`, never on `detail`. A denied',
    'or failed answer\'s audit record holds the same code as its `reason`. The codes with status 200',
    '(at the end) are only ever audit reasons.',
    '',
    `${rows.length} codes, by status.`,
    '',
    '| Code | Status | 中文 | Meaning | What to do |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| \`${r.code}\` | ${r.statusText} | ${cell(r.zh)} | ${cell(r.en)} | ${cell(r.action)} |`),
    `| \`${f.code}\` | any | ${cell(f.zh)} | ${cell(f.en)} | ${cell(f.action)} |`,
    '',
  ].join('\n')
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = renderProblemDocs()
  if (process.argv.includes('--check')) {
    const current = (() => { try { return readFileSync(DOC_FILE, 'utf8') } catch { return '' } })()
    if (current !== text) {
      console.error('docs/problems.md is stale: run npm run gen:problem-docs')
      process.exit(1)
    }
    console.log('docs/problems.md is up to date')
  } else {
    writeFileSync(DOC_FILE, text)
    console.log(`wrote ${DOC_FILE}`)
  }
}
