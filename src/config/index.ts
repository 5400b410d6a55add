// Typed, validated configuration: defaults < config/node.json (or TONGBAN_CONFIG) < env.
// A bad value stops the process at start with the variable named, never later. Every
// setting is described once, in schema.ts; the type below is derived from it.
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { RegionTier } from '../gb/region.js'
import type { Infer } from './infer.js'
import { ConfigError, loadSettings, type Env } from './load.js'
import { configSchema } from './schema.js'

export { ConfigError } from './load.js'
export { configSchema } from './schema.js'

export type Config = Infer<typeof configSchema> & {
  /** The directory relative paths are resolved against. */
  root: string
}

/** Bulk verification (src/bulk): limits of a submission and of the workers of this replica. */
export type BatchConfig = Config['batch']

// The schema's tiers are GB/T 2260's (src/gb/region.ts): a compile error if they drift apart.
const sameTiers: [RegionTier, Config['node']['tier']] extends [Config['node']['tier'], RegionTier] ? true : never = true
void sameTiers

function readFileConfig(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ConfigError(`config file ${path} does not exist`)
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new ConfigError(`config file ${path}: ${(e as Error).message}`)
  }
}

export function loadConfig(env: Env = process.env, root = process.cwd()): Config {
  const fileName = resolve(root, env.TONGBAN_CONFIG || 'config/node.json')
  const file = env.TONGBAN_CONFIG || existsSync(fileName) ? readFileConfig(fileName) : {}
  const settings = loadSettings(configSchema, { env, file, fileName, root })
  return { root, ...(settings as Infer<typeof configSchema>) }
}
