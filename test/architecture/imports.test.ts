// The import rules of the house (.dependency-cruiser.cjs, docs/architecture.md) hold: no
// folder imports one its rules forbid. A failure names the rule, the importing file and the
// imported one.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from '../helpers/harness.js'

t.test('no import breaks a rule of the house', async (t) => {
  const bin = join(ROOT, 'node_modules/.bin/depcruise')
  const r = spawnSync(bin, ['src', 'dev', 'packages/client/src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  t.equal(r.error, undefined, 'dependency-cruiser ran')
  const out = JSON.parse(r.stdout) as { summary: { violations: Array<{ rule: { name: string }; from: string; to: string }>; totalCruised: number } }
  t.ok(out.summary.totalCruised > 100, `it read the tree (${out.summary.totalCruised} modules)`)
  const lines = out.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)
  t.same(lines, [], 'no violations')
})

t.test('the rules can fail: a standards module importing a pipeline step is caught', async (t) => {
  // A tree of two files, laid out like the gateway's, checked with the same rules.
  const dir = mkdtempSync(join(tmpdir(), 'tongban-imports-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'src/gb'), { recursive: true })
  mkdirSync(join(dir, 'src/exchange'), { recursive: true })
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' } }))
  writeFileSync(join(dir, 'src/exchange/query.ts'), 'export const step = 1\n')
  writeFileSync(join(dir, 'src/gb/region.ts'), "import { step } from '../exchange/query.js'\nexport const x = step\n")
  const bin = join(ROOT, 'node_modules/.bin/depcruise')
  const r = spawnSync(bin, ['src', '--config', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'json'], { cwd: dir, encoding: 'utf8' })
  const out = JSON.parse(r.stdout) as { summary: { violations: Array<{ rule: { name: string }; from: string }> } }
  t.same(out.summary.violations.map((v) => `${v.rule.name}: ${v.from}`), ['gb-is-a-leaf: src/gb/region.ts'])
})
