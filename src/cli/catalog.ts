// `tongban catalog <subcommand>`: catalogue files from the command line. `args` are the
// words after `catalog`. Exit codes: 0 valid, 1 invalid, 2 usage or setup error.
import { loadCatalogDir, type CatalogFileError } from '../catalog/files.js'
import { importCommand, listCommand } from './catalog-db.js'
import { stdio, type Io } from './io.js'
import { parseCommand } from './args.js'

type Subcommand = (args: string[], io: Io) => Promise<number>

const USAGE = `Usage: tongban catalog <command>

Commands:
  validate <dir> [--schemas <dir>] [--json]
      Check every *.json catalogue entry in <dir> against the entry schema and the
      sharing rules; print each problem as "file: /json/pointer: reason".
      --schemas  JSON Schema directory (default: schemas)
      --json     print {"valid", "entries", "errors"} as JSON instead
  import <dir> [--json]
      Validate, then load the entries into this node's database (new version per change).
  list [--json]
      The newest version of every resource in this node's database.

Exit status: 0 valid, 1 invalid, 2 usage error.`

const subcommands: Record<string, Subcommand> = {
  validate,
  import: importCommand,
  list: listCommand,
}

export async function run(args: string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = args
  if (name === undefined) {
    io.err(USAGE)
    return 2
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(USAGE)
    return 0
  }
  const subcommand = Object.hasOwn(subcommands, name) ? subcommands[name] : undefined
  if (!subcommand) {
    io.err(`tongban catalog: unknown command "${name}"\n\n${USAGE}`)
    return 2
  }
  return subcommand(rest, io)
}

async function validate(args: string[], io: Io): Promise<number> {
  const parsed = parseCommand(io, 'catalog validate', USAGE, args, {
    schemas: { type: 'string', default: 'schemas' },
    json: { type: 'boolean', default: false },
  })
  if (typeof parsed === 'number') return parsed
  if (parsed.positionals.length !== 1) {
    io.err(`tongban catalog validate: expected one catalogue directory\n\n${USAGE}`)
    return 2
  }
  let result
  try {
    result = await loadCatalogDir(parsed.positionals[0], parsed.values.schemas)
  } catch (e) {
    // An unreadable directory or a broken entry schema is a setup problem, not a finding.
    io.err(`tongban catalog validate: ${(e as Error).message}`)
    return 2
  }
  const { entries, errors } = result
  if (parsed.values.json) {
    io.out(JSON.stringify({ valid: errors.length === 0, entries: entries.length, errors }, null, 2))
  } else {
    for (const e of errors) io.out(formatError(e))
    const valid = count(entries.length, 'valid entry', 'valid entries')
    io.out(errors.length === 0 ? valid : `${count(errors.length, 'problem', 'problems')}; ${valid}`)
  }
  return errors.length === 0 ? 0 : 1
}

const count = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`

export const formatError = (e: CatalogFileError): string =>
  e.path === '' ? `${e.file}: ${e.reason}` : `${e.file}: ${e.path}: ${e.reason}`
