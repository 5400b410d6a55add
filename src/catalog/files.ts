// Catalogue files: load catalog/*.json, check each entry against
// schemas/catalog-entry.schema.json and against the rules a schema cannot express
// (share-type consistency, referenced schema files, uniqueness across files), and report
// every problem with its file and JSON pointer so an admin can fix them in one pass.
import { readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import type { ErrorObject, SchemaObject, ValidateFunction } from 'ajv'
import { catalogueValidators } from '../validation/ajv.js'
import type { CatalogEntry, CatalogItem, OperationBinding } from './types.js'

export interface CatalogFileError {
  file: string
  /** JSON pointer into the entry ('' is the whole document), e.g. /sharing/legalBasis. */
  path: string
  reason: string
}

type Problem = Omit<CatalogFileError, 'file'>

export const ENTRY_SCHEMA_FILE = 'catalog-entry.schema.json'

const schemaCache = new Map<string, SchemaObject>()

/**
 * The parsed JSON Schema at `relPath` under `schemasDir`, cached by absolute path.
 * Throws if the file is outside schemasDir, missing, not JSON or not a schema object.
 */
export function loadSchemaFile(schemasDir: string, relPath: string): SchemaObject {
  const root = resolve(schemasDir)
  const file = resolve(root, relPath)
  if (!file.startsWith(root + sep)) throw new Error(`${relPath} is outside ${schemasDir}`)
  const cached = schemaCache.get(file)
  if (cached) return cached
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${relPath} not found in ${schemasDir}`)
    throw e
  }
  let schema: unknown
  try {
    schema = parseJson(text)
  } catch (e) {
    throw new Error(`${relPath} is not valid JSON: ${(e as Error).message}`)
  }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new Error(`${relPath} is not a JSON Schema object`)
  }
  schemaCache.set(file, schema as SchemaObject)
  return schema as SchemaObject
}

/** JSON.parse that tolerates a UTF-8 BOM and says where (line:column) the text breaks. */
function parseJson(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  try {
    return JSON.parse(body)
  } catch (e) {
    const message = (e as Error).message
    const at = /position (\d+)/.exec(message)
    if (!at) throw e
    const before = body.slice(0, Number(at[1])).split('\n')
    throw new SyntaxError(`${message} (line ${before.length}, column ${before[before.length - 1].length + 1})`)
  }
}

function entryValidator(schemasDir: string): ValidateFunction {
  const schema = loadSchemaFile(schemasDir, ENTRY_SCHEMA_FILE)
  return catalogueValidators(schema).compile(schema)
}

const pointer = (...segments: string[]): string =>
  segments.map((s) => '/' + s.replace(/~/g, '~0').replace(/\//g, '~1')).join('')

/** One readable problem per ajv error; null for errors that only repeat others. */
function fromAjv(e: ErrorObject): Problem | null {
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'if': // "must match then schema": the failing inner keyword is reported as well
    case 'propertyNames': // likewise, with the offending name
      return null
    case 'required':
      return { path: e.instancePath + pointer(String(p.missingProperty)), reason: 'is required' }
    case 'additionalProperties':
      return { path: e.instancePath + pointer(String(p.additionalProperty)), reason: 'is not allowed' }
    case 'enum':
      return { path: e.instancePath, reason: `must be one of: ${(p.allowedValues as unknown[]).join(', ')}` }
  }
  if (e.propertyName !== undefined) {
    return { path: e.instancePath + pointer(e.propertyName), reason: `name ${e.message}` }
  }
  // A pattern or format alone rarely tells the reader what is wanted; the schema says it.
  const description = (e.parentSchema as SchemaObject | undefined)?.description
  const explain = (e.keyword === 'pattern' || e.keyword === 'format') && description ? ` (${description})` : ''
  return { path: e.instancePath, reason: `${e.message}${explain}` }
}

/** Every problem of one entry; [] when it may be imported. */
export function validateCatalogEntry(entry: unknown, schemasDir: string, file = ''): CatalogFileError[] {
  const validate = entryValidator(schemasDir)
  const problems: Problem[] = validate(entry)
    ? crossCheck(entry as CatalogEntry, schemasDir)
    : // The rules below assume the shape the schema guarantees.
      (validate.errors ?? []).map(fromAjv).filter((x): x is Problem => x !== null)
  return problems.map((x) => ({ file, ...x }))
}

function crossCheck(entry: CatalogEntry, schemasDir: string): Problem[] {
  const problems = [...checkItemNames(entry.items), ...checkShareTypes(entry)]
  const service = entry.service
  if (service) {
    if (service.verifyService && !service.operations.verify) {
      problems.push({
        path: pointer('service', 'operations', 'verify'),
        reason: `is required: verifyService "${service.verifyService}" is answered by the verify operation`,
      })
    }
    for (const [name, op] of Object.entries(service.operations)) {
      problems.push(...checkOperation(entry.items, op, pointer('service', 'operations', name), schemasDir))
    }
  }
  return problems
}

function checkItemNames(items: CatalogItem[]): Problem[] {
  const first = new Map<string, number>()
  const problems: Problem[] = []
  items.forEach((item, i) => {
    const seen = first.get(item.name)
    if (seen === undefined) first.set(item.name, i)
    else problems.push({ path: pointer('items', String(i), 'name'), reason: `duplicates /items/${seen}/name "${item.name}"` })
  })
  return problems
}

// 国发〔2016〕51号 as the project reads it (see the schema's top-level description). The
// resource's type decides who may call it at all; each item's type decides what a caller
// receives:
//   none          nobody calls it, so every item is none;
//   unconditional any registered department calls it: unconditional items are returned to
//                 all, conditional items only under a grant naming them, none items never;
//                 it needs an unconditional item, or nothing would be open to all;
//   conditional   only under an active grant for the resource: unconditional items go to
//                 every grant holder without being named, conditional items only when named,
//                 none items never; it needs a conditional item, or no grant would be needed.
function checkShareTypes(entry: CatalogEntry): Problem[] {
  const type = entry.sharing.type
  const items = entry.items
  if (type === 'none') {
    return items.flatMap((item, i) =>
      item.shareType === 'none' ? [] : [{
        path: pointer('items', String(i), 'shareType'),
        reason: `is ${item.shareType}, but nothing of a resource that is not shared may be released: make the item none`,
      }],
    )
  }
  if (items.some((i) => i.shareType === type)) return []
  // No item carries the resource's own type: say which type the items do support.
  const other = type === 'unconditional' ? 'conditional' : 'unconditional'
  const instead = items.some((i) => i.shareType === other) ? other : 'none'
  const why = type === 'unconditional'
    ? 'an unconditional resource needs at least one unconditional item, released to every department'
    : 'a conditional resource needs at least one conditional item, released only under a grant naming it'
  return [{
    path: pointer('sharing', 'type'),
    reason: `is ${type}, but no item is: ${why} (make an item ${type}, or the resource ${instead})`,
  }]
}

function checkOperation(items: CatalogItem[], op: OperationBinding, at: string, schemasDir: string): Problem[] {
  const problems: Problem[] = []
  const request = compiledSchema(schemasDir, op.requestSchema, `${at}/requestSchema`, problems)
  if (request && op.subjectField !== undefined && !topLevelFields(request).includes(op.subjectField)) {
    problems.push({
      path: `${at}/subjectField`,
      reason: `"${op.subjectField}" is not a property of ${op.requestSchema} (it has: ${topLevelFields(request).join(', ') || 'none'})`,
    })
  }
  const response = compiledSchema(schemasDir, op.responseSchema, `${at}/responseSchema`, problems)
  if (response) problems.push(...checkResponseFields(items, response, op.responseSchema, `${at}/responseSchema`))
  return problems
}

/** The schema if it loads and compiles; otherwise a problem at `at` and undefined. */
function compiledSchema(schemasDir: string, relPath: string, at: string, problems: Problem[]): SchemaObject | undefined {
  let schema: SchemaObject
  try {
    schema = loadSchemaFile(schemasDir, relPath)
  } catch (e) {
    problems.push({ path: at, reason: (e as Error).message })
    return undefined
  }
  try {
    catalogueValidators(schema).compile(schema)
    return schema
  } catch (e) {
    problems.push({ path: at, reason: `${relPath} does not compile: ${(e as Error).message}` })
    return undefined
  }
}

const topLevelFields = (schema: SchemaObject): string[] =>
  typeof schema.properties === 'object' && schema.properties !== null ? Object.keys(schema.properties) : []

// The gateway filters responses item by item, so every field an upstream may return must
// be a catalogue item with a share type, and no undeclared field may slip through.
function checkResponseFields(items: CatalogItem[], schema: SchemaObject, relPath: string, at: string): Problem[] {
  if (schema.type !== 'object' || schema.additionalProperties !== false) {
    return [{ path: at, reason: `${relPath} must be an object schema with additionalProperties: false, so that every returned field is a catalogue item` }]
  }
  const names = new Set(items.map((i) => i.name))
  return topLevelFields(schema)
    .filter((field) => !names.has(field))
    .map((field) => ({ path: at, reason: `${relPath} returns "${field}", which is not a catalogue item` }))
}

/** The file a catalogue entry must live in: its code with `/` replaced by `-`. */
export const catalogFileName = (code: string): string => code.replace('/', '-') + '.json'

/**
 * Reads every *.json in `dir` (sorted by name). `entries` holds only the entries without
 * any error, each once; `errors` lists every problem found.
 */
export async function loadCatalogDir(
  dir: string,
  schemasDir: string,
): Promise<{ entries: CatalogEntry[]; errors: CatalogFileError[] }> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isFile() && d.name.endsWith('.json'))
    .map((d) => d.name)
    .sort()
  const entries: CatalogEntry[] = []
  const errors: CatalogFileError[] = []
  const claims: Claims = { codes: new Map(), verifyServices: new Map(), verifySchemas: new Map() }
  for (const name of names) {
    const file = join(dir, name)
    let data: unknown
    try {
      data = parseJson(await readFile(file, 'utf8'))
    } catch (e) {
      errors.push({ file, path: '', reason: `invalid JSON: ${(e as Error).message}` })
      continue
    }
    const found = validateCatalogEntry(data, schemasDir, file)
    if (found.length === 0) {
      const entry = data as CatalogEntry
      found.push(...checkAcrossFiles(entry, name, claims).map((x) => ({ file, ...x })))
      if (found.length === 0) entries.push(entry)
    }
    errors.push(...found)
  }
  return { entries, errors }
}

/** What the entries seen so far claim: codes, and verify services per provider region. */
interface Claims {
  codes: Map<string, string>
  /** `${verifyService} ${provider region}` → file. */
  verifyServices: Map<string, string>
  /** verifyService → the first file binding it and its verify schemas. */
  verifySchemas: Map<string, { file: string; requestSchema: string; responseSchema: string }>
}

/**
 * File name and uniqueness rules. Only an entry that passes them claims its code and verify
 * service, so a stray copy never makes the rightful file look like the duplicate.
 *
 * A verify service may be answered by several resources, one per provider region (a city's
 * own real-estate registry next to the provincial one): `POST /v1/verify/{service}` picks the
 * one nearest the caller's region (CatalogRepository.forVerifyService). Two resources of the
 * same region would make that choice arbitrary, so they are refused; and as the route has
 * one request and one response schema, every resource of a service must use the same ones.
 */
function checkAcrossFiles(entry: CatalogEntry, name: string, claims: Claims): Problem[] {
  const problems: Problem[] = []
  if (name !== catalogFileName(entry.code)) {
    problems.push({ path: pointer('code'), reason: `"${entry.code}" does not match the file name: expected ${catalogFileName(entry.code)}` })
  }
  const holder = claims.codes.get(entry.code)
  if (holder) problems.push({ path: pointer('code'), reason: `"${entry.code}" is already used by ${holder}` })
  const service = entry.service?.verifyService
  const verify = entry.service?.operations.verify
  const key = service && `${service} ${entry.provider.region}`
  const other = key && claims.verifyServices.get(key)
  if (other) {
    problems.push({
      path: pointer('service', 'verifyService'),
      reason: `"${service}" is already bound by ${other} for provider region ${entry.provider.region}`,
    })
  }
  const first = service ? claims.verifySchemas.get(service) : undefined
  if (first && verify) {
    for (const which of ['requestSchema', 'responseSchema'] as const) {
      if (verify[which] !== first[which]) {
        problems.push({
          path: pointer('service', 'operations', 'verify', which),
          reason: `is ${verify[which]}, but "${service}" is answered with ${first[which]} (${first.file}): every resource of a verify service uses the same schemas`,
        })
      }
    }
  }
  if (problems.length === 0) {
    claims.codes.set(entry.code, name)
    if (key && verify) {
      claims.verifyServices.set(key, name)
      if (!first) claims.verifySchemas.set(service!, { file: name, requestSchema: verify.requestSchema, responseSchema: verify.responseSchema })
    }
  }
  return problems
}
