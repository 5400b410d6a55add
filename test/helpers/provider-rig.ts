// Shared by the simulated-provider tests: validators for the gateway's schemas (with the
// formats the catalogue loader knows), and a provider on an ephemeral loopback port.
import type { Test } from 'tap'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ValidateFunction } from 'ajv'
import formats from 'ajv-formats'
import type { FastifyInstance } from 'fastify'
import { loadSchemaFile } from '../../src/catalog/files.js'
import { domainFormats, domainKeywords } from '../../src/validation/formats.js'

const schemasDir = join(fileURLToPath(new URL('../..', import.meta.url)), 'schemas')

/** A validator for a schema under schemas/, with the formats the catalogue loader knows. */
export const validator = (rel: string): ValidateFunction => {
  const ajv = new Ajv({ allErrors: true, strictTypes: false, strictTuples: false, formats: domainFormats, keywords: domainKeywords })
  formats.default(ajv)
  return ajv.compile(loadSchemaFile(schemasDir, rel))
}

/** Starts a provider on an ephemeral loopback port; closed when the test ends. */
export async function serve(t: Test, app: FastifyInstance): Promise<string> {
  t.teardown(() => app.close())
  return app.listen({ port: 0, host: '127.0.0.1' })
}

export const post = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

/** The 200 answer's JSON; throws on any other status. */
export const answer = async (url: string, path: string, body: unknown): Promise<any> => {
  const res = await post(url, path, body)
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`)
  return res.json()
}

/** Every body must be refused with 400 (nothing coerced, nothing dropped). */
export async function refusesAll(t: Test, url: string, path: string, bodies: unknown[]): Promise<void> {
  for (const body of bodies) {
    const res = await post(url, path, body)
    t.equal(res.status, 400, `${path} ${JSON.stringify(body)}`)
    await res.arrayBuffer()
  }
}
