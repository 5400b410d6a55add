// The configuration schema is the one description of every setting: each is complete
// (a default, a description), docs/operations.md lists the same variables and file keys,
// and src/config depends on nothing above it.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { configSchema } from '../../src/config/index.js'
import { ROOT } from '../helpers/harness.js'

type Node = Record<string, any>
interface Setting {
  path: string
  schema: Node
  /** Inside a section that is null unless one of its keys is set. */
  optional: boolean
}

function settings(s: Node, path: string[] = [], optional = false, out: Setting[] = []): Setting[] {
  if (s['x-null-unless']) return settings(s.anyOf.find((b: Node) => b.type === 'object'), path, true, out)
  if (s.type === 'object' && s.properties && !('default' in s) && !('x-env' in s)) {
    for (const [k, v] of Object.entries(s.properties as Record<string, Node>)) settings(v, [...path, k], optional, out)
  } else {
    out.push({ path: path.join('.'), schema: s, optional })
  }
  return out
}

const all = settings(configSchema)

t.test('every setting has a description and a default (or belongs to a section that is off unless set)', async (t) => {
  t.ok(all.length > 60, `${all.length} settings`)
  for (const { path, schema, optional } of all) {
    t.ok(typeof schema.description === 'string' && schema.description.length > 3, `${path}: described`)
    t.ok('default' in schema || 'x-default' in schema || optional, `${path}: has a default`)
    const to = schema['x-relative-to']
    if (to) t.ok(to === 'root' || all.some((o) => o.path === to && o.schema['x-relative-to'] === 'root'), `${path}: relative to a root-relative path`)
    for (const ref of String(schema['x-default'] ?? '').matchAll(/\$\{([^}]+)\}/g)) {
      const target = all.find((o) => o.path === ref[1])
      t.ok(ref[1] === 'hostname' || (target && !('x-default' in target.schema)), `${path}: template refers to ${ref[1]}, a setting that is not itself derived`)
    }
  }
  const names = all.flatMap((s) => (s.schema['x-env'] ?? []) as string[])
  t.same(names.filter((n, i) => names.indexOf(n) !== i), [], 'no variable sets two settings')
})

// The tables of docs/operations.md: | `ENV` (or `ALIAS`) | `file.key`, `.sibling` | default | meaning |
function documented(): Map<string, string | null> {
  const text = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8')
  const byEnv = new Map<string, string | null>()
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim())
    if (cells.length < 5 || !/`[A-Z_<>]+`/.test(cells[1])) continue
    const envs = [...cells[1].matchAll(/`([A-Z][A-Z0-9_<>]*)`/g)].map((m) => m[1])
    const named = [...cells[2].matchAll(/`([a-zA-Z.<>]+)`/g)].map((m) => m[1])
    const keys = named.map((k, i) => (k.startsWith('.') ? named[0].replace(/\.[^.]+$/, '') + k : k))
    // A row either pairs each variable with a key, or gives aliases of one key.
    const primary = envs.filter((e) => !new RegExp(`\\(or \`${e}\``).test(cells[1]))
    let p = -1
    for (const e of envs) {
      if (primary.includes(e)) p++
      byEnv.set(e, keys.length === 0 ? null : keys[Math.min(p, keys.length - 1)])
    }
  }
  return byEnv
}

t.test('docs/operations.md lists every variable with its file key, and nothing the schema does not know', async (t) => {
  const docs = documented()
  for (const { path, schema } of all) {
    for (const env of (schema['x-env'] ?? []) as string[]) {
      t.ok(docs.has(env), `${env} (${path}) is documented`)
      if (docs.has(env)) t.equal(docs.get(env), schema['x-file'] === false ? null : path, `${env}: file key`)
    }
    if (schema['x-env-prefix']) t.ok(docs.has(`${schema['x-env-prefix']}<NAME>`), `${schema['x-env-prefix']}<NAME> is documented`)
  }
  const known = new Set(all.flatMap((s) => [...(s.schema['x-env'] ?? []), ...(s.schema['x-env-prefix'] ? [`${s.schema['x-env-prefix']}<NAME>`] : [])]))
  known.add('TONGBAN_CONFIG') // names the file itself
  for (const env of docs.keys()) t.ok(known.has(env), `${env}, documented, is a setting`)
})

t.test('src/config imports nothing but Node, its own files, gb and validation (no layer above it)', async (t) => {
  const dir = join(ROOT, 'src/config')
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(dir, f), 'utf8')
    for (const m of text.matchAll(/(?:\bfrom\s+|^import\s+)['"]([^'"]+)['"]/gm)) {
      t.match(m[1], /^(node:|\.\/|\.\.\/gb\/|\.\.\/validation\/)/, `${f} imports ${m[1]}`)
    }
  }
})
