// JSON Schema of the resolved configuration (see README, Configuration, for the env names).
import { tiersConfigSchema } from '../tiers/topology.js'

const str = { type: 'string', minLength: 1 }
const region = { type: 'string', pattern: '^[1-9][0-9]{5}$' }
const url = { type: 'string', pattern: '^[a-z][a-z0-9+.-]*://' }

export const configSchema = {
  type: 'object',
  required: ['node', 'replicaId', 'http', 'postgres', 'redis', 'pki', 'audit', 'token', 'files', 'policy', 'upstreams', 'metrics', 'batch'],
  properties: {
    node: {
      type: 'object',
      required: ['id', 'name', 'region', 'tier', 'publicUrl'],
      properties: {
        id: region,
        name: str,
        region,
        tier: { enum: ['national', 'province', 'city', 'county'] },
        publicUrl: url,
        parent: { anyOf: [{ type: 'null' }, region] },
      },
    },
    replicaId: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
    http: {
      type: 'object',
      properties: {
        host: str,
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        bodyLimit: { type: 'integer', minimum: 1024, maximum: 100 * 1024 * 1024 },
      },
    },
    postgres: {
      type: 'object',
      properties: {
        url: url,
        schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
        poolSize: { type: 'integer', minimum: 1, maximum: 200 },
        queryTimeoutMs: { type: 'integer', minimum: 100 },
      },
    },
    redis: { type: 'object', properties: { url, prefix: { type: 'string', pattern: '^[A-Za-z0-9:._-]{1,64}$' } } },
    audit: {
      type: 'object',
      properties: {
        alg: { enum: ['RS256', 'PS256'] },
        batchMaxSize: { type: 'integer', minimum: 1, maximum: 4096 },
        batchWindowMs: { type: 'integer', minimum: 0, maximum: 1000 },
      },
    },
    token: { type: 'object', properties: { ttlSeconds: { type: 'integer', minimum: 30, maximum: 86400 } } },
    policy: {
      type: 'object',
      properties: {
        decisionWorkingDays: { type: 'integer', minimum: 1, maximum: 60 },
        reminderWorkingDays: { type: 'integer', minimum: 0, maximum: 30 },
        rateLimitPerSecond: { type: 'integer', minimum: 0, description: '0 switches per-system rate limiting off' },
      },
    },
    upstreams: { type: 'object', additionalProperties: url },
    metrics: {
      type: 'object',
      properties: { token: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 16, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' }] } },
    },
    batch: {
      type: 'object',
      properties: {
        worker: { type: 'boolean' },
        maxItems: { type: 'integer', minimum: 1, maximum: 100_000 },
        maxBytes: { type: 'integer', minimum: 1024, maximum: 256 * 1024 * 1024 },
        chunkSize: { type: 'integer', minimum: 1, maximum: 1000 },
        jobConcurrency: { type: 'integer', minimum: 1, maximum: 64 },
        upstreamConcurrency: { type: 'integer', minimum: 1, maximum: 512 },
        upstreamRatePerSecond: { type: 'integer', minimum: 0 },
        limits: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            properties: { concurrency: { type: 'integer', minimum: 1, maximum: 512 }, ratePerSecond: { type: 'integer', minimum: 0 } },
          },
        },
        lockMs: { type: 'integer', minimum: 1000, maximum: 600_000 },
        retentionDays: { type: 'integer', minimum: 1, maximum: 365 },
      },
    },
    tiers: tiersConfigSchema,
    checkpointPush: {
      type: 'object',
      properties: {
        intervalMs: { type: 'integer', minimum: 200, maximum: 3_600_000 },
        batch: { type: 'integer', minimum: 1, maximum: 2000 },
      },
    },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
} as const
