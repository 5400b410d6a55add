// The loader: one walk over the configuration schema (schema.ts). Each setting takes the
// first of: its environment variables, the config file, its default. Integers, booleans
// and JSON are parsed with the variable named in the error. The result is then validated
// against the same schema, each error naming where its value came from.
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { reportingValidators } from '../validation/ajv.js'

export class ConfigError extends Error {}

export type Env = Record<string, string | undefined>

type Schema = { readonly [k: string]: any }
type Kind = 'string' | 'integer' | 'boolean' | 'json'

interface Leaf {
  path: string[]
  schema: Schema
}

export interface Sources {
  env: Env
  /** The parsed config file ({} when there is none) and its name, for messages. */
  file: Record<string, unknown>
  fileName: string
  root: string
}

const isSection = (s: Schema): boolean => s.type === 'object' && s.properties !== undefined && !('default' in s) && !('x-env' in s)

/** Settings in schema order, and the sections that are null unless one of their keys is set. */
function walk(schema: Schema, path: string[] = [], leaves: Leaf[] = [], nullable: Leaf[] = []): { leaves: Leaf[]; nullable: Leaf[] } {
  if (schema['x-null-unless']) {
    nullable.push({ path, schema })
    return walk(schema.anyOf.find((b: Schema) => b.type === 'object'), path, leaves, nullable)
  }
  if (!isSection(schema)) {
    leaves.push({ path, schema })
    return { leaves, nullable }
  }
  for (const [k, s] of Object.entries(schema.properties as Record<string, Schema>)) walk(s, [...path, k], leaves, nullable)
  return { leaves, nullable }
}

function kindOf(s: Schema): Kind {
  const types: unknown[] = s.anyOf ? s.anyOf.map((b: Schema) => b.type) : [s.type]
  if (types.includes('integer')) return 'integer'
  if (types.includes('boolean')) return 'boolean'
  if (types.includes('object') || types.includes('array')) return 'json'
  return 'string'
}

function parse(kind: Kind, name: string, raw: string): unknown {
  switch (kind) {
    case 'string':
      return raw
    case 'integer': {
      const n = Number(raw)
      if (!Number.isInteger(n)) throw new ConfigError(`${name}: expected an integer, got ${JSON.stringify(raw)}`)
      return n
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true
      if (/^(0|false|no|off)$/i.test(raw)) return false
      throw new ConfigError(`${name}: expected 1/0 (true/false), got ${JSON.stringify(raw)}`)
    case 'json':
      try {
        return JSON.parse(raw)
      } catch {
        throw new ConfigError(`${name}: expected JSON, got ${JSON.stringify(raw.slice(0, 80))}`)
      }
  }
}

const get = (obj: unknown, path: string[]): unknown => path.reduce<any>((o, k) => (o !== null && typeof o === 'object' ? o[k] : undefined), obj)

function set(obj: Record<string, any>, path: string[], value: unknown): void {
  let o = obj
  for (const k of path.slice(0, -1)) o = o[k] ??= {}
  o[path[path.length - 1]] = value
}

const pointer = (path: string[]) => '/' + path.join('/')

/** One setting from its sources: [value, where it came from]; undefined when none sets it. */
function read(leaf: Leaf, src: Sources): [unknown, string] | undefined {
  const s = leaf.schema
  const kind = kindOf(s)
  const given = (v: unknown) => v !== undefined && v !== null && !(s['x-unset'] ?? []).includes(v)
  const meaning = (v: unknown) => ((s['x-none'] ?? []).includes(v) ? null : v)
  const envValues: Array<[unknown, string]> = []
  for (const name of (s['x-env'] ?? []) as string[]) {
    const raw = src.env[name]
    if (raw === undefined || (raw === '' && kind !== 'string') || !given(raw)) continue
    envValues.push([meaning(parse(kind, name, raw)), name])
  }
  const fileValue = s['x-file'] === false ? undefined : get(src.file, leaf.path)
  const fromFile: [unknown, string] | undefined = given(fileValue) ? [meaning(fileValue), `${src.fileName} ${leaf.path.join('.')}`] : undefined
  if (s['x-merge']) {
    const prefix = s['x-env-prefix'] as string | undefined
    const named: Record<string, string> = {}
    if (prefix) {
      // TONGBAN_UPSTREAM_MPS_IDENTITY → mps-identity
      for (const [k, v] of Object.entries(src.env)) if (k.startsWith(prefix) && v) named[k.slice(prefix.length).toLowerCase().replaceAll('_', '-')] = v
    }
    const parts = [fromFile, ...envValues.slice().reverse()].filter((p) => p !== undefined)
    const value = Object.assign({}, s.default, ...parts.map((p) => p[0]), named)
    return [value, parts.map((p) => p[1]).concat(Object.keys(named).length ? [`${prefix}*`] : []).join(', ') || 'default']
  }
  if (envValues.length) return envValues[0]
  if (fromFile) return fromFile
  if ('default' in s) return [s.default, 'default']
  return undefined
}

function readJsonFile(name: string, path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new ConfigError(`${name} ${path}: ${(e as Error).message}`)
  }
}

/** Defaults of the properties of a list's items, such as a topology node's parent. */
function fillItemDefaults(s: Schema, value: unknown): void {
  const props = s.type === 'array' ? (s.items?.properties as Record<string, Schema> | undefined) : undefined
  if (!props || !Array.isArray(value)) return
  for (const item of value) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) continue
    for (const [k, p] of Object.entries(props)) if ('default' in p && item[k] === undefined) item[k] = structuredClone(p.default)
  }
}

/** The configuration from `src`, validated; throws ConfigError naming the setting. */
export function loadSettings(schema: Schema, src: Sources): Record<string, unknown> {
  const { leaves, nullable } = walk(schema)
  const out: Record<string, any> = {}
  const origin = new Map<string, string>()
  for (const leaf of leaves) {
    const r = read(leaf, src)
    if (!r) continue
    set(out, leaf.path, structuredClone(r[0]))
    origin.set(pointer(leaf.path), r[1])
  }
  // Derived defaults, over settings that are themselves not derived.
  for (const leaf of leaves) {
    const template = leaf.schema['x-default'] as string | undefined
    if (template === undefined || get(out, leaf.path) !== undefined) continue
    set(out, leaf.path, template.replace(/\$\{([^}]+)\}/g, (_, key: string) => (key === 'hostname' ? hostname() : String(get(out, key.split('.'))))))
  }
  // Paths: those relative to the root first, as others are relative to one of them.
  const relative = leaves.filter((l) => l.schema['x-relative-to'])
  for (const leaf of [...relative.filter((l) => l.schema['x-relative-to'] === 'root'), ...relative.filter((l) => l.schema['x-relative-to'] !== 'root')]) {
    const v = get(out, leaf.path)
    const to = leaf.schema['x-relative-to'] as string
    if (typeof v === 'string') set(out, leaf.path, resolve(to === 'root' ? src.root : String(get(out, to.split('.'))), v))
  }
  for (const leaf of leaves) {
    const s = leaf.schema
    const ref = s['x-from-file'] as string | undefined
    const name = ref && get(out, ref.split('.'))
    const fromEnv = (s['x-env'] ?? []).includes(origin.get(pointer(leaf.path)))
    if (typeof name === 'string' && name !== '' && !fromEnv) {
      set(out, leaf.path, readJsonFile(ref!, name))
      origin.set(pointer(leaf.path), name)
    }
    const key = s['x-unwrap'] as string | undefined
    const v = get(out, leaf.path)
    if (key && v !== null && typeof v === 'object' && !Array.isArray(v) && key in v) set(out, leaf.path, (v as Record<string, unknown>)[key])
  }
  for (const leaf of leaves) fillItemDefaults(leaf.schema, get(out, leaf.path))
  for (const { path, schema: s } of nullable) {
    if (get(out, [...path, s['x-null-unless']]) === undefined) set(out, path, null)
  }

  const validate = reportingValidators.compile(schema)
  if (!validate(out)) {
    const whence = (at: string) => {
      for (let p = at; p !== ''; p = p.slice(0, p.lastIndexOf('/'))) {
        const o = origin.get(p)
        if (o && o !== 'default') return ` (${o})`
      }
      return ''
    }
    const msgs = validate.errors!.map((e) => `${e.instancePath || '/'} ${e.message}${whence(e.instancePath)}`)
    throw new ConfigError(`invalid configuration:\n  ${[...new Set(msgs)].join('\n  ')}`)
  }
  return out
}
