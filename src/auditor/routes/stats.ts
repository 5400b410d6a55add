// Volumes, denial rates and latency: exact, from the daily rollup plus what was sealed since.
import type { FastifyInstance } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { computeStats, defaultFrom, StatsCache, STATS_TZ } from '../stats.js'
import { auditorRoute, ERRORS, filterProperties, filtersOf, open, refusedSubject, requireOrderedRange, resolver } from './shared.js'
import { refuseRawInQuery } from './subject-input.js'
import type { Names } from './names.js'

const MAX_DAYS = 400

export default async function stats(app: FastifyInstance, opts: { names: Names }) {
  const resolve = resolver(app)
  const cache = new StatsCache()

  app.get('/v1/audit/stats', auditorRoute(app, 'audit.stats', {
    summary: 'Volumes, denial rates by reason, latency percentiles; by day, resource, department, region and tier (auditor)',
    description: `Days are in ${STATS_TZ}; the default range is the 7 calendar days up to \`to\` (default: now), its day included. \`kind\` defaults to query (data queries). Latency is the time from a request's arrival (its ULID request id) to its answer; caller-chosen request ids give none. Whole days come from the daily rollup (audit_daily) plus what was sealed since its last pass; \`plan\` in the answer says how it was computed. Results are cached for 15 s (10 min for ranges that ended).`,
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...filterProperties,
        kind: { ...filterProperties.kind, default: 'query' },
        subject: refusedSubject,
      },
    },
    response: { 200: open, ...ERRORS },
  }), async (request) => {
    const q = request.query as Record<string, any>
    refuseRawInQuery(q)
    const to: string = q.to ?? new Date().toISOString()
    const from: string = q.from ?? defaultFrom(to)
    requireOrderedRange(from, to)
    if (Date.parse(to) - Date.parse(from) > MAX_DAYS * 86400_000) throw new Problem(400, 'AUDIT_RANGE_TOO_LARGE', `at most ${MAX_DAYS} days per call`)
    const filters = { ...filtersOf(q), from, to }
    const key = JSON.stringify(filters)
    const hit = cache.get(key)
    if (hit) return hit
    const n = await opts.names()
    const value = await computeStats(app.readDb, { filters, resolver: resolve, names: { resource: n.resource, department: n.department } })
    cache.set(key, value)
    return value
  })
}
