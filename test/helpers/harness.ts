// A real node for tests: its own PostgreSQL schema and Redis key prefix per run, the real
// simulated identity provider on a loopback port, the dev PKI under certs/.
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { loadConfig, type Config } from '../../src/config/index.js'
import { buildApp } from '../../src/app.js'
import { prepare } from '../../src/cli/prepare.js'
import { signClientAssertion, CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'
import { buildIdentityProvider } from '../../dev/providers/identity/app.js'
import { buildPropertyProvider } from '../../dev/providers/property/app.js'
import { buildTaxProvider } from '../../dev/providers/tax/app.js'
import { buildDegreeProvider } from '../../dev/providers/degree/app.js'
import { buildSocialSecurityProvider } from '../../dev/providers/social-security/app.js'
import { buildNanjingPropertyProvider } from '../../dev/providers/nanjing-property/app.js'
import { buildLicenceLibrary, devLicenceLibrary } from '../../dev/providers/licences/app.js'

export const ROOT = resolve(import.meta.dirname, '../..')
export const PG_URL = process.env.TONGBAN_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.TONGBAN_REDIS_URL ?? 'redis://127.0.0.1:6379'

export const clientKey = (clientId: string) => readFileSync(join(ROOT, 'certs/clients', `${clientId}.key.pem`), 'utf8')

export interface Harness {
  app: FastifyInstance
  config: Config
  schema: string
  provider: FastifyInstance
  /** The simulated licence library (its state: `licences.library`). */
  licences: FastifyInstance
  env: Record<string, string>
  token(clientId: string): Promise<string>
  assertion(clientId: string, overrides?: { audience?: string; lifetimeSeconds?: number; keyPem?: string }): string
  query(sql: string, params?: unknown[]): Promise<any[]>
  close(): Promise<void>
}

export function uniqueName(tag: string): string {
  return `t_${tag}_${process.pid}_${randomBytes(3).toString('hex')}`.toLowerCase()
}

export async function startNode(opts: { tag?: string; env?: Record<string, string>; providerDelayMs?: number; schema?: string; keepSchema?: boolean; logger?: object } = {}): Promise<Harness> {
  const provider = buildIdentityProvider({ delayMs: opts.providerDelayMs })
  await provider.listen({ port: 0, host: '127.0.0.1' })
  const providerUrl = `http://127.0.0.1:${(provider.server.address() as { port: number }).port}`
  const property = buildPropertyProvider()
  await property.listen({ port: 0, host: '127.0.0.1' })
  const propertyUrl = `http://127.0.0.1:${(property.server.address() as { port: number }).port}`
  // The other departments' simulated services, each on its own loopback port.
  const licences = buildLicenceLibrary({ library: await devLicenceLibrary(join(ROOT, 'certs')) })
  const departments = [buildTaxProvider(), buildDegreeProvider(), buildSocialSecurityProvider(), buildNanjingPropertyProvider(), licences]
  const [taxUrl, degreeUrl, socialSecurityUrl, njPropertyUrl, licenceLibraryUrl] = await Promise.all(
    departments.map(async (d) => {
      await d.listen({ port: 0, host: '127.0.0.1' })
      return `http://127.0.0.1:${(d.server.address() as { port: number }).port}`
    }),
  )
  const schema = opts.schema ?? uniqueName(opts.tag ?? 'node')
  const env: Record<string, string> = {
    TONGBAN_PG_URL: PG_URL,
    TONGBAN_REDIS_URL: REDIS_URL,
    TONGBAN_PG_SCHEMA: schema,
    TONGBAN_REDIS_PREFIX: `${schema}:`,
    TONGBAN_UPSTREAM_MPS_IDENTITY: providerUrl,
    TONGBAN_UPSTREAM_NR_PROPERTY: propertyUrl,
    TONGBAN_UPSTREAM_TAX_CERTIFICATES: taxUrl,
    TONGBAN_UPSTREAM_EDU_CREDENTIALS: degreeUrl,
    TONGBAN_UPSTREAM_HRSS_SOCIAL_SECURITY: socialSecurityUrl,
    TONGBAN_UPSTREAM_NJ_PROPERTY: njPropertyUrl,
    TONGBAN_UPSTREAM_LICENCE_LIBRARY: licenceLibraryUrl,
    TONGBAN_REPLICA_ID: `${schema}-r1`,
    TONGBAN_PORT: '0',
    TONGBAN_PUBLIC_URL: 'https://tongban.test',
    TONGBAN_LOG_LEVEL: process.env.TEST_LOG ?? 'silent',
    ...opts.env,
  }
  const config = loadConfig(env, ROOT)
  await prepare(config)
  const app = await buildApp(config, opts.logger ? { logger: opts.logger } : process.env.TEST_LOG ? {} : { logger: false })
  await app.ready()
  const db = new pg.Pool({ connectionString: PG_URL, options: `-c search_path=${schema}`, max: 2 })
  const tokenUrl = `${config.node.publicUrl}/v1/oauth/token`

  const assertion: Harness['assertion'] = (clientId, o = {}) =>
    signClientAssertion({ clientId, keyPem: o.keyPem ?? clientKey(clientId), audience: o.audience ?? tokenUrl, lifetimeSeconds: o.lifetimeSeconds })

  return {
    app,
    config,
    schema,
    provider,
    licences,
    env,
    assertion,
    async token(clientId) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/oauth/token',
        payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion(clientId) },
      })
      if (res.statusCode !== 200) throw new Error(`token for ${clientId}: ${res.statusCode} ${res.body}`)
      return res.json().access_token
    },
    async query(sql, params) {
      return (await db.query(sql, params)).rows
    },
    async close() {
      const step = (m: string) => process.env.DEBUG_CLOSE && console.error(`close ${schema}: ${m}`)
      step('app')
      await app.close()
      step('providers')
      await provider.close()
      await property.close()
      await Promise.all(departments.map((d) => d.close()))
      step('schema')
      if (!opts.keepSchema) {
        await dropSchema(db, schema)
        await clearRedis(config.redis.prefix)
      }
      await db.end()
      step('done')
    },
  }
}

async function dropSchema(db: pg.Pool, schema: string) {
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
}

export async function clearRedis(prefix: string) {
  const redis = new Redis(REDIS_URL)
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    if (keys.length) await redis.del(...keys)
    cursor = next
  } while (cursor !== '0')
  redis.disconnect()
}

export const context = (extra: Record<string, string> = {}) => ({
  'tongban-purpose': 'SA-01;%E4%BD%8E%E4%BF%9D%E5%AE%A1%E6%A0%B8',
  'tongban-case-id': 'JN-2026-1000',
  ...extra,
})
