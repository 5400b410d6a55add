// Process entry of the simulated 自然资源 real-estate registry service.
// Env: PORT (default 7102), HOST (default 127.0.0.1), SIM_DELAY_MS (hold every answer),
// SIM_FAULT_HEADERS=1 (honour x-sim-delay-ms; test rigs only).
import { buildPropertyProvider } from './app.js'

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

const port = intFromEnv('PORT', 7102, 65_535)
const app = buildPropertyProvider({
  logger: true,
  delayMs: intFromEnv('SIM_DELAY_MS', 0, 60_000),
  allowFaultHeaders: process.env.SIM_FAULT_HEADERS === '1',
})

const url = await app.listen({ host: process.env.HOST || '127.0.0.1', port })
app.log.info(`property provider ready at ${url}`)

// Finish the requests in flight, then leave.
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
