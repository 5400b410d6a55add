// `tongban prepare`: what `npm start` and `npm test` run before starting anything.
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config/index.js'
import { CatalogInvalidError, prepare } from './prepare.js'

const HELP = `Usage: tongban prepare [--json]

Makes this node ready to start, idempotently: generates the dev PKI and the audit HMAC key
if missing, migrates the database schema (TONGBAN_PG_SCHEMA), registers the systems of
config/systems.json and imports the catalogue (catalog/). Configuration comes from the
environment and config/node.json (see README, Configuration).`

export async function run(args: string[]): Promise<number> {
  let values
  try {
    values = parseArgs({ args, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values
  } catch (e) {
    console.error(`tongban prepare: ${(e as Error).message}\n\n${HELP}`)
    return 2
  }
  if (values.help) {
    console.log(HELP)
    return 0
  }
  try {
    const config = loadConfig()
    const result = await prepare(config, values.json ? () => {} : (m) => console.log(`  ${m}`))
    if (values.json) console.log(JSON.stringify(result))
    else {
      const c = result.catalog
      console.log(`prepared node ${config.node.id} (schema ${config.postgres.schema}): ${result.systems} systems; catalogue ${c.added.length} added, ${c.updated.length} updated, ${c.unchanged.length} unchanged, ${c.skipped.length} left to the catalogue admins`)
    }
    return 0
  } catch (e) {
    const known = e instanceof ConfigError || e instanceof CatalogInvalidError
    console.error(`tongban prepare: ${known ? (e as Error).message : (e as Error).stack}`)
    return 1
  }
}
