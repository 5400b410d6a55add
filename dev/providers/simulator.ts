// What every simulated departmental service shares: a strict Fastify instance (a number
// where a string belongs, or an unknown field, is a 400, not something to coerce or drop
// silently), GET /healthz, an optional fixed delay and — for test rigs only — a per-request
// delay header; and the process entry that runs one service until SIGTERM or SIGINT.
import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'

/** The body most services take: a person by id number and name. */
export interface PersonQuery {
  idNumber: string
  name: string
}

/** Its schema: strict, as the real services are. */
export const personQueryBody = {
  type: 'object',
  required: ['idNumber', 'name'],
  additionalProperties: false,
  properties: {
    idNumber: { type: 'string', pattern: '^[0-9]{17}[0-9X]$' },
    name: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const

export interface SimulatorOptions {
  /** Hold every answer this long: lets tests drive the gateway's upstream timeout. */
  delayMs?: number
  logger?: boolean
  /** Honour `x-sim-delay-ms` per request. Test rigs only: it lets any caller slow the service. */
  allowFaultHeaders?: boolean
}

const MAX_DELAY_MS = 60_000

const parseDelay = (header: string | string[] | undefined): number | undefined => {
  if (typeof header !== 'string' || !/^[0-9]{1,5}$/.test(header)) return undefined
  const ms = Number(header)
  return ms <= MAX_DELAY_MS ? ms : undefined
}

export const createSimulator = (opts: SimulatorOptions = {}): FastifyInstance => {
  const app = Fastify({
    logger: opts.logger ?? false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  })
  const delayMs = opts.delayMs ?? 0

  app.addHook('onRequest', async (request, reply) => {
    let ms = delayMs
    if (opts.allowFaultHeaders && request.headers['x-sim-delay-ms'] !== undefined) {
      const asked = parseDelay(request.headers['x-sim-delay-ms'])
      if (asked === undefined) {
        return reply.code(400).send({ error: `x-sim-delay-ms must be an integer from 0 to ${MAX_DELAY_MS}` })
      }
      ms = asked
    }
    if (ms > 0) await sleep(ms)
  })

  app.get('/healthz', async () => ({ status: 'ok' }))
  return app
}

const intFromEnv = (name: string, fallback: number, max: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > max) {
    console.error(`${name} must be an integer from 0 to ${max}`)
    process.exit(2)
  }
  return n
}

/**
 * Process entry of a simulated service. Env: PORT (default `defaultPort`), HOST (default
 * 127.0.0.1), SIM_DELAY_MS (hold every answer), SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms;
 * test rigs only). Finishes the requests in flight on SIGTERM/SIGINT, then leaves.
 */
export async function runSimulator(build: (o: SimulatorOptions) => FastifyInstance, defaultPort: number, label: string): Promise<void> {
  const port = intFromEnv('PORT', defaultPort, 65_535)
  const app = build({
    logger: true,
    delayMs: intFromEnv('SIM_DELAY_MS', 0, 60_000),
    allowFaultHeaders: process.env.SIM_FAULT_HEADERS === '1',
  })
  const url = await app.listen({ host: process.env.HOST || '127.0.0.1', port })
  app.log.info(`${label} ready at ${url}`)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      app.log.info(`${signal}: closing`)
      app.close().then(
        () => process.exit(0),
        (err: unknown) => {
          app.log.error(err)
          process.exit(1)
        },
      )
    })
  }
}
