// Typed, validated configuration: defaults < config/node.json (or TONGBAN_CONFIG) < env.
// A bad value stops the process at start with the variable named, never later.
import { readFileSync, existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { Ajv } from 'ajv'
import { configSchema } from './schema.js'
import { TiersConfigError, readParent, readTiersConfig, topologyProblems, type TiersConfig } from '../tiers/topology.js'

export type Tier = 'national' | 'province' | 'city' | 'county'

export interface Config {
  root: string
  /** parent: the parent node's id in the tier tree (src/tiers), null for a root or a stand-alone node. */
  node: { id: string; name: string; region: string; tier: Tier; publicUrl: string; parent: string | null }
  replicaId: string
  http: { host: string; port: number; bodyLimit: number }
  postgres: { url: string; schema: string; poolSize: number; queryTimeoutMs: number }
  redis: { url: string; prefix: string }
  pki: { dir: string; caFile: string; certFile: string; keyFile: string }
  audit: { keyFile: string; alg: 'RS256' | 'PS256'; batchMaxSize: number; batchWindowMs: number; stateDir: string }
  token: { ttlSeconds: number; assertionMaxLifetimeSeconds: number }
  files: { catalogDir: string; schemasDir: string; systemsFile: string; purposesFile: string }
  policy: { decisionWorkingDays: number; reminderWorkingDays: number; holidaysFile: string; rateLimitPerSecond: number }
  upstreams: Record<string, string>
  metrics: { token: string | null }
  batch: BatchConfig
  /** Four tiers (src/tiers/topology.ts): topology, node listener, relay limits, catalogue sync. */
  tiers: TiersConfig
  /** Checkpoints sent to the parent node (src/tiers/checkpoint-push.ts); unused without a parent. */
  checkpointPush: { intervalMs: number; batch: number }
  logLevel: string
}

/** Bulk verification (src/batch): limits of a submission and of the workers of this replica. */
export interface BatchConfig {
  /** Run the batch worker in this process (TONGBAN_BATCH_WORKER=0 for API-only replicas). */
  worker: boolean
  maxItems: number
  maxBytes: number
  chunkSize: number
  /** Chunk jobs run at once by this replica's worker. */
  jobConcurrency: number
  /** Items in flight at once per upstream, per replica (overridable per upstream in limits). */
  upstreamConcurrency: number
  /** Items per second per upstream across all replicas (Redis counter); 0 = unlimited. */
  upstreamRatePerSecond: number
  limits: Record<string, { concurrency?: number; ratePerSecond?: number }>
  /** BullMQ lock of a running chunk job: how soon a killed worker's chunk is taken over. */
  lockMs: number
  /** Finished batches (and their results) are deleted after this many days. */
  retentionDays: number
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>

const int = (env: Env, name: string): number | undefined => {
  const v = env[name]
  if (v === undefined || v === '') return undefined
  const n = Number(v)
  if (!Number.isInteger(n)) throw new ConfigError(`${name}: expected an integer, got ${JSON.stringify(v)}`)
  return n
}

const bool = (env: Env, name: string): boolean | undefined => {
  const v = env[name]
  if (v === undefined || v === '') return undefined
  if (/^(1|true|yes|on)$/i.test(v)) return true
  if (/^(0|false|no|off)$/i.test(v)) return false
  throw new ConfigError(`${name}: expected 1/0 (true/false), got ${JSON.stringify(v)}`)
}

const json = (env: Env, name: string): unknown => {
  const v = env[name]
  if (v === undefined || v === '') return undefined
  try {
    return JSON.parse(v)
  } catch {
    throw new ConfigError(`${name}: expected JSON, got ${JSON.stringify(v)}`)
  }
}

// TONGBAN_UPSTREAM_MPS_IDENTITY=http://… maps the catalogue's logical upstream `mps-identity`.
const upstreamsFromEnv = (env: Env): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('TONGBAN_UPSTREAM_') && v) out[k.slice(17).toLowerCase().replaceAll('_', '-')] = v
  }
  return { ...(json(env, 'TONGBAN_UPSTREAMS') as Record<string, string> | undefined), ...out }
}

const readFileConfig = (path: string): Record<string, any> => {
  if (!existsSync(path)) throw new ConfigError(`config file ${path} does not exist`)
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new ConfigError(`config file ${path}: ${(e as Error).message}`)
  }
}

export function loadConfig(env: Env = process.env, root = process.cwd()): Config {
  const file = env.TONGBAN_CONFIG ? resolve(root, env.TONGBAN_CONFIG) : resolve(root, 'config/node.json')
  const f = existsSync(file) || env.TONGBAN_CONFIG ? readFileConfig(file) : {}
  const fn = f.node ?? {}
  const nodeId = env.TONGBAN_NODE_ID ?? fn.id ?? '320000'
  const port = int(env, 'TONGBAN_PORT') ?? int(env, 'PORT') ?? f.http?.port ?? 8443
  const host = env.TONGBAN_HOST ?? f.http?.host ?? '127.0.0.1'
  const pkiDir = resolve(root, env.TONGBAN_PKI_DIR ?? f.pki?.dir ?? 'certs')
  const raw = {
    root,
    node: {
      id: nodeId,
      name: env.TONGBAN_NODE_NAME ?? fn.name ?? `Tongban node ${nodeId}`,
      region: env.TONGBAN_NODE_REGION ?? fn.region ?? nodeId,
      tier: env.TONGBAN_NODE_TIER ?? fn.tier ?? 'province',
      publicUrl: env.TONGBAN_PUBLIC_URL ?? fn.publicUrl ?? `http://${host}:${port}`,
      parent: readParent(env, f),
    },
    replicaId: env.TONGBAN_REPLICA_ID ?? f.replicaId ?? `${hostname()}-${port}`,
    http: { host, port, bodyLimit: int(env, 'TONGBAN_BODY_LIMIT') ?? f.http?.bodyLimit ?? 64 * 1024 },
    postgres: {
      url: env.TONGBAN_PG_URL ?? env.DATABASE_URL ?? f.postgres?.url ?? 'postgres://postgres@127.0.0.1:5432/test',
      schema: env.TONGBAN_PG_SCHEMA ?? f.postgres?.schema ?? 'tongban',
      poolSize: int(env, 'TONGBAN_PG_POOL') ?? f.postgres?.poolSize ?? 10,
      queryTimeoutMs: int(env, 'TONGBAN_PG_QUERY_TIMEOUT_MS') ?? f.postgres?.queryTimeoutMs ?? 5000,
    },
    redis: {
      url: env.TONGBAN_REDIS_URL ?? env.REDIS_URL ?? f.redis?.url ?? 'redis://127.0.0.1:6379',
      prefix: env.TONGBAN_REDIS_PREFIX ?? f.redis?.prefix ?? 'tongban:',
    },
    pki: {
      dir: pkiDir,
      caFile: resolve(pkiDir, env.TONGBAN_CA_FILE ?? 'ca.crt.pem'),
      certFile: resolve(pkiDir, env.TONGBAN_CERT_FILE ?? `node/${nodeId}.crt.pem`),
      keyFile: resolve(pkiDir, env.TONGBAN_KEY_FILE ?? `node/${nodeId}.key.pem`),
    },
    audit: {
      keyFile: resolve(pkiDir, env.TONGBAN_AUDIT_KEY_FILE ?? 'audit-hmac.key'),
      alg: env.TONGBAN_AUDIT_ALG ?? f.audit?.alg ?? 'RS256',
      batchMaxSize: int(env, 'TONGBAN_AUDIT_BATCH_MAX') ?? f.audit?.batchMaxSize ?? 256,
      batchWindowMs: int(env, 'TONGBAN_AUDIT_BATCH_WINDOW_MS') ?? f.audit?.batchWindowMs ?? 1,
      // High-water marks of the chains (src/audit/high-water.ts): kept outside PostgreSQL.
      stateDir: resolve(pkiDir, env.TONGBAN_AUDIT_STATE_DIR ?? 'audit-hwm'),
    },
    token: {
      ttlSeconds: int(env, 'TONGBAN_TOKEN_TTL') ?? f.token?.ttlSeconds ?? 600,
      assertionMaxLifetimeSeconds: 300,
    },
    files: {
      catalogDir: resolve(root, env.TONGBAN_CATALOG_DIR ?? f.files?.catalogDir ?? 'catalog'),
      schemasDir: resolve(root, env.TONGBAN_SCHEMAS_DIR ?? f.files?.schemasDir ?? 'schemas'),
      systemsFile: resolve(root, env.TONGBAN_SYSTEMS_FILE ?? f.files?.systemsFile ?? 'config/systems.json'),
      purposesFile: resolve(root, env.TONGBAN_PURPOSES_FILE ?? f.files?.purposesFile ?? 'config/purposes.json'),
    },
    policy: {
      decisionWorkingDays: int(env, 'TONGBAN_DECISION_WORKING_DAYS') ?? f.policy?.decisionWorkingDays ?? 10,
      reminderWorkingDays: int(env, 'TONGBAN_REMINDER_WORKING_DAYS') ?? f.policy?.reminderWorkingDays ?? 2,
      holidaysFile: resolve(root, env.TONGBAN_HOLIDAYS_FILE ?? f.policy?.holidaysFile ?? 'config/holidays.json'),
      rateLimitPerSecond: int(env, 'TONGBAN_RATE_LIMIT') ?? f.policy?.rateLimitPerSecond ?? 2000,
    },
    upstreams: { ...(f.upstreams ?? {}), ...upstreamsFromEnv(env) },
    metrics: { token: env.TONGBAN_METRICS_TOKEN || f.metrics?.token || null },
    batch: {
      worker: bool(env, 'TONGBAN_BATCH_WORKER') ?? f.batch?.worker ?? true,
      maxItems: int(env, 'TONGBAN_BATCH_MAX_ITEMS') ?? f.batch?.maxItems ?? 100_000,
      maxBytes: int(env, 'TONGBAN_BATCH_MAX_BYTES') ?? f.batch?.maxBytes ?? 32 * 1024 * 1024,
      chunkSize: int(env, 'TONGBAN_BATCH_CHUNK') ?? f.batch?.chunkSize ?? 100,
      jobConcurrency: int(env, 'TONGBAN_BATCH_JOB_CONCURRENCY') ?? f.batch?.jobConcurrency ?? 4,
      upstreamConcurrency: int(env, 'TONGBAN_BATCH_UPSTREAM_CONCURRENCY') ?? f.batch?.upstreamConcurrency ?? 16,
      upstreamRatePerSecond: int(env, 'TONGBAN_BATCH_UPSTREAM_RATE') ?? f.batch?.upstreamRatePerSecond ?? 500,
      limits: (json(env, 'TONGBAN_BATCH_LIMITS') as BatchConfig['limits'] | undefined) ?? f.batch?.limits ?? {},
      lockMs: int(env, 'TONGBAN_BATCH_LOCK_MS') ?? f.batch?.lockMs ?? 30_000,
      retentionDays: int(env, 'TONGBAN_BATCH_RETENTION_DAYS') ?? f.batch?.retentionDays ?? 7,
    },
    tiers: tiersSection(env, f, root, host),
    checkpointPush: {
      intervalMs: int(env, 'TONGBAN_CHECKPOINT_PUSH_INTERVAL_MS') ?? f.checkpointPush?.intervalMs ?? 10_000,
      batch: int(env, 'TONGBAN_CHECKPOINT_PUSH_BATCH') ?? f.checkpointPush?.batch ?? 500,
    },
    logLevel: env.TONGBAN_LOG_LEVEL ?? env.LOG_LEVEL ?? f.logLevel ?? 'info',
  }
  const validate = new Ajv({ allErrors: true }).compile(configSchema)
  if (!validate(raw)) {
    const msgs = validate.errors!.map((e) => `${e.instancePath || '/'} ${e.message}`)
    throw new ConfigError(`invalid configuration:\n  ${msgs.join('\n  ')}`)
  }
  // Four tiers: an impossible tree (a county under another city, a cycle, a wrong prefix) stops here.
  const topology = topologyProblems(raw.node as Config['node'], raw.tiers as TiersConfig)
  if (topology.length) throw new ConfigError(`invalid topology:\n  ${topology.join('\n  ')}`)
  return raw as Config
}

const tiersSection = (env: Env, f: Record<string, any>, root: string, host: string): unknown => {
  try {
    return readTiersConfig(env, f, root, host)
  } catch (e) {
    if (e instanceof TiersConfigError) throw new ConfigError(e.message)
    throw e
  }
}
