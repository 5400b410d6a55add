// Generates packages/client/src/types.ts — the SDK's request and answer types — from the JSON
// Schemas that the catalogue binds to each resource operation (catalog/*.json → schemas/).
// The gateway validates with the same schemas, so the SDK's types cannot drift from what
// the gateway accepts: test/sdk/sdk.test.ts regenerates and compares. The verify services are
// the catalogue's `verifyService` names, nothing else: a service added to the catalogue after
// generation is still callable through TongbanClient.verifyService(name, body), untyped.
//
//   npm run gen:client-types           write packages/client/src/types.ts
//   npm run gen:client-types -- --check   exit 1 if it is not up to date
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { compile } from 'json-schema-to-typescript'

const ROOT = resolve(import.meta.dirname, '..')
export const TYPES_FILE = join(ROOT, 'packages/client/src/types.ts')

interface Operation { requestSchema: string; responseSchema: string }
interface Entry { code: string; name: string; service?: { verifyService?: string; operations: Record<string, Operation> } }

const q = (s: string) => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`

const pascal = (s: string) => s.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('')

/** `verify/identity.request.schema.json` → `IdentityVerifyRequest`-style names. */
const typeName = (schemaPath: string, kind: 'Request' | 'Response', entry: Entry, op: string) => {
  if (entry.service?.verifyService && op === 'verify') return `${pascal(entry.service.verifyService)}VerifyRequest`.replace(/Request$/, kind)
  const base = schemaPath.replace(/\.(request|response)\.schema\.json$/, '')
  return `${pascal(base)}${kind}`
}

/** Titles become doc comments, not type names (they are Chinese, and names must be stable). */
function prepare(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(prepare)
  if (!node || typeof node !== 'object') return node
  const out: Record<string, unknown> = {}
  const src = node as Record<string, unknown>
  for (const [k, v] of Object.entries(src)) {
    if (k === '$id' || k === '$schema' || k === 'title' || k === 'examples' || k === 'format') continue
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, prepare(s)])) : prepare(v)
  }
  const title = typeof src.title === 'string' ? src.title : undefined
  const description = typeof src.description === 'string' ? src.description : undefined
  if (title || description) out.description = [title, description].filter(Boolean).join(': ')
  if (typeof src.format === 'string') out.description = `${out.description ? `${out.description} ` : ''}(format ${src.format})`
  return out
}

export async function generateClientTypes(root = ROOT): Promise<string> {
  const catalogDir = join(root, 'catalog')
  const schemasDir = join(root, 'schemas')
  const entries: Entry[] = readdirSync(catalogDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(catalogDir, f), 'utf8')))
    .sort((a, b) => a.code.localeCompare(b.code))

  const done = new Map<string, string>() // schema path → type name
  const owners = new Map<string, string>() // type name → schema path
  const blocks: string[] = []
  const emit = async (schemaPath: string, name: string) => {
    const seen = done.get(schemaPath)
    if (seen) return seen
    // Names come from service names and paths; two schemas must not share one.
    const owner = owners.get(name)
    if (owner) throw new Error(`${schemaPath} and ${owner} would both be typed ${name}: rename one`)
    owners.set(name, schemaPath)
    const schema = prepare(JSON.parse(readFileSync(join(schemasDir, schemaPath), 'utf8'))) as object
    const ts = await compile(schema as never, name, {
      bannerComment: `/** schemas/${schemaPath} */`,
      additionalProperties: false,
      declareExternallyReferenced: true,
      strictIndexSignatures: true,
      unknownAny: true,
      style: { semi: false, singleQuote: true, printWidth: 120 },
    })
    blocks.push(ts.trim())
    done.set(schemaPath, name)
    return name
  }

  const verify: string[] = []
  const resources: string[] = []
  for (const e of entries) {
    const ops = e.service?.operations ?? {}
    const opLines: string[] = []
    for (const op of Object.keys(ops).sort()) {
      const req = await emit(ops[op].requestSchema, typeName(ops[op].requestSchema, 'Request', e, op))
      const res = await emit(ops[op].responseSchema, typeName(ops[op].responseSchema, 'Response', e, op))
      opLines.push(`    ${q(op)}: { request: ${req}; response: ${res} }`)
      const svc = e.service?.verifyService
      if (op === 'verify' && svc && !verify.some((l) => l.startsWith(`  ${q(svc)}:`))) {
        verify.push(`  ${q(svc)}: { request: ${req}; response: ${res} }`)
      }
    }
    if (opLines.length) resources.push(`  /** ${e.name} */\n  ${q(e.code)}: {\n${opLines.join('\n')}\n  }`)
  }
  const services = verify.map((l) => l.trim().split(':')[0])

  return `// GENERATED by scripts/gen-client-types.ts from catalog/*.json and schemas/ — do not edit.
// Regenerate with \`npm run gen:client-types\` after changing a catalogue entry or a schema.

${blocks.join('\n\n')}

/** POST /v1/verify/{service}: request and answer per verification service in the catalogue. */
export interface VerifyServices {
${verify.join('\n')}
}

export const VERIFY_SERVICES = [${services.join(', ')}] as const

/** POST /v1/resources/{code}/{operation}: request and answer per catalogue resource operation. */
export interface ResourceOperations {
${resources.join('\n')}
}
`
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = await generateClientTypes()
  if (process.argv.includes('--check')) {
    const current = readFileSync(TYPES_FILE, 'utf8')
    if (current !== text) {
      console.error('packages/client/src/types.ts is out of date: run npm run gen:client-types')
      process.exit(1)
    }
    console.log('packages/client/src/types.ts is up to date')
  } else {
    writeFileSync(TYPES_FILE, text)
    console.log(`wrote ${TYPES_FILE}`)
  }
}
