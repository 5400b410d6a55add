// The SDK as a department installs it: `npm pack` of packages/client, the tarball installed
// offline into a fresh project (it has no dependencies, so nothing is fetched), and then
// what that costs on disk (the sum of the installed files' bytes) must stay under 2 MB. The
// installed package is imported by its name from that project, as a department would, and
// its compiled files may import Node built-ins and each other only.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../helpers/harness.js'

t.setTimeout(240_000)

const BUDGET = 2 * 1024 * 1024
const PACKAGE = join(ROOT, 'packages/client')

const dir = mkdtempSync(join(tmpdir(), 'tongban-client-pack-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const cache = join(dir, 'npm-cache')
// The test runs under `npm test`: its npm_* variables (the root package's) stay out.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')))
const npm = (args: string[], cwd: string) => {
  const r = spawnSync('npm', [...args, '--cache', cache, '--no-update-notifier'], { cwd, env, encoding: 'utf8' })
  return { ...r, out: `${r.stdout}\n${r.stderr}` }
}

/** Bytes of every regular file under dir (symbolic links not followed). */
function bytesUnder(d: string): number {
  let total = 0
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name)
    if (e.isDirectory()) total += bytesUnder(p)
    else if (e.isFile()) total += lstatSync(p).size
  }
  return total
}

const pack = npm(['pack', '--json', '--pack-destination', dir], PACKAGE)
const [packed] = pack.status === 0 ? (JSON.parse(pack.stdout) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>) : []

t.test('npm pack makes a tarball of the built package', async (t) => {
  t.equal(pack.status, 0, pack.out)
  t.ok(packed, 'one tarball')
  const files = packed.files.map((f) => f.path)
  for (const f of ['package.json', 'LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts']) t.ok(files.includes(f), `holds ${f}`)
  t.same(files.filter((f) => f.startsWith('src/') || f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources, only JS and declarations')
})

t.test('installed offline into a fresh project: under 2 MB, no dependencies, importable by name', async (t) => {
  const app = join(dir, 'app')
  spawnSync('mkdir', ['-p', app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'department-app', private: true, type: 'module' }))
  const install = npm(['install', '--offline', '--no-audit', '--no-fund', join(dir, packed.filename)], app)
  t.equal(install.status, 0, install.out)

  const modules = join(app, 'node_modules')
  const installed = readdirSync(modules).filter((n) => !n.startsWith('.'))
  t.same(installed, ['@tongban'], 'nothing but the SDK was installed')
  const size = bytesUnder(modules)
  t.comment(`installed size of node_modules: ${size} bytes (${(size / 1024).toFixed(1)} KiB); tarball ${packed.size} bytes`)
  t.ok(size < BUDGET, `${size} bytes installed, under the budget of ${BUDGET}`)

  const manifest = JSON.parse(readFileSync(join(modules, '@tongban/client/package.json'), 'utf8'))
  t.same(manifest.dependencies ?? {}, {}, 'no runtime dependencies')
  t.match(manifest.engines, { node: '>=20.10' })

  const probe = spawnSync(process.execPath, ['--input-type=module', '-e', "const m = await import('@tongban/client'); console.log(JSON.stringify([typeof m.TongbanClient, typeof m.EvidenceVerifier, typeof m.fetchToken, typeof m.loadPkcs12, m.jcs({ b: 1, a: [true, null] })]))"], { cwd: app, encoding: 'utf8' })
  t.equal(probe.status, 0, probe.stderr)
  t.same(JSON.parse(probe.stdout), ['function', 'function', 'function', 'function', '{"a":[true,null],"b":1}'], 'the exports resolve from the installed package')
})

t.test('the compiled files import Node built-ins and each other, nothing else', async (t) => {
  const dist = join(PACKAGE, 'dist')
  const outside: string[] = []
  for (const f of readdirSync(dist).filter((n) => n.endsWith('.js'))) {
    for (const m of readFileSync(join(dist, f), 'utf8').matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)) {
      if (!/^(node:|\.\/[a-z0-9-]+\.js$)/.test(m[1])) outside.push(`${f}: ${m[1]}`)
    }
  }
  t.same(outside, [])
})
