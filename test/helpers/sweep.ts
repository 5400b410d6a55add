// A sweep of hostile values through every route parameter, query-string field and key,
// string body field and context header of the running app, plus the body fields that name
// things (batch target, application purposes and items). Every answer must be below 500
// and, when an error, problem+json with a code. Used with Object.prototype's names and with
// strings no store can hold (NUL, unpaired surrogates).
import type { FastifyInstance, InjectOptions } from 'fastify'
import { context } from './harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { appRoutes, tokenFor as roleToken } from './routes.js'

export interface Probe { label: string; o: InjectOptions & { url: string } }

/** Percent-encodes what can be; a lone surrogate as the bytes of its CESU form (invalid UTF-8). */
const enc = (s: string): string => {
  try {
    return encodeURIComponent(s)
  } catch {
    return [...s].map((ch) => {
      const c = ch.charCodeAt(0)
      if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff) return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('')
      return encodeURIComponent(ch)
    }).join('')
  }
}

export function sweepProbes(app: FastifyInstance, tokens: Record<string, string>, NAMES: string[]): { probes: Probe[]; seen: Set<string> } {
  const [p0] = samplePersons(1)
  const tokenFor = (method: string, url: string) => roleToken(tokens as any, method, url)
// Plausible values for the other parameters of a URL, so that only one name is hostile.
const DEFAULT_PARAM: Record<string, string> = {
  code: '101001%2F00001', category: '101001', seq: '00001', operation: 'verify', service: 'identity',
  id: '01JZZZZZZZZZZZZZZZZZZZZZZZ', n: '1',
}
const fill = (url: string, hostile?: { param: string; value: string }) =>
  url.replace(/:([A-Za-z]+)/g, (_m, p: string) =>
    hostile?.param === p ? enc(hostile.value) : (DEFAULT_PARAM[p] ?? 'x'))

const props = (schema: unknown): Record<string, { type?: unknown }> => {
  const p = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties
  return p && typeof p === 'object' ? p : {}
}
const stringFields = (schema: unknown) =>
  Object.entries(props(schema)).filter(([, s]) => s.type === undefined || s.type === 'string' || (Array.isArray(s.type) && s.type.includes('string'))).map(([k]) => k)

interface Probe { label: string; o: InjectOptions & { url: string } }
const probes: Probe[] = []
const isQuery = (url: string) => url.startsWith('/v1/verify/') || url.startsWith('/v1/resources/') || url === '/v1/batches'

const seen = new Set<string>()
for (const { method, url, route: r } of appRoutes(app)) {
  // Static files and the API explorer take no names.
  if (url.includes('*') || url.startsWith('/docs')) continue
  {
    const key = `${method} ${url}`
    seen.add(key)
    const hasBody = method === 'POST' || method === 'PUT'
    const headers = (extra: Record<string, string> = {}) => ({
      authorization: `Bearer ${tokenFor(method, r.url)}`,
      ...(isQuery(r.url) ? context() : {}),
      ...(r.url.startsWith('/v1/catalog') && method === 'PUT' ? { 'if-match': '"1"' } : {}),
      ...extra,
    })
    const body = r.url.startsWith('/v1/verify/') || r.url.startsWith('/v1/resources/') ? { idNumber: p0.idNumber, name: p0.name } : {}
    const send = (label: string, o: Partial<InjectOptions> & { url: string }) =>
      probes.push({ label: `${key} ${label}`, o: { method: method as InjectOptions['method'], headers: headers(), ...(hasBody ? { payload: body } : {}), ...o } })
    const schema = (r.schema ?? {}) as { querystring?: unknown; body?: unknown }
    for (const name of NAMES) {
      for (const [, param] of r.url.matchAll(/:([A-Za-z]+)/g)) send(`:${param}=${name}`, { url: fill(r.url, { param, value: name }) })
      for (const q of Object.keys(props(schema.querystring))) send(`?${q}=${name}`, { url: `${fill(r.url)}?${encodeURIComponent(q)}=${enc(name)}` })
      // The name as a query-string key too: parsers that build plain objects meet it there.
      if (method === 'GET') send(`?${name}=x`, { url: `${fill(r.url)}?${enc(name)}=x` })
      if (hasBody) {
        for (const f of stringFields(schema.body)) send(`body.${f}=${name}`, { url: fill(r.url), payload: { ...body, [f]: name } })
      }
      if (isQuery(r.url)) {
        send(`Tongban-Purpose: ${name}`, { url: fill(r.url), headers: headers({ 'tongban-purpose': name }) })
        send(`Tongban-Case-Id: ${name}`, { url: fill(r.url), headers: headers({ 'tongban-case-id': name }) })
        send(`Tongban-Operator: ${name}`, { url: fill(r.url), headers: headers({ 'tongban-operator': name }) })
      }
    }
  }
}

// Body fields that name things, with the rest of the body valid so that the lookup is reached.
for (const name of NAMES) {
  const consumer = { authorization: `Bearer ${tokens.consumer}`, ...context() }
  const item = { idNumber: p0.idNumber, name: p0.name }
  probes.push(
    { label: `batch operation ${name}`, o: { method: 'POST', url: '/v1/batches', headers: consumer, payload: { resource: '101001/00001', operation: name, items: [item] } } },
    { label: `batch service ${name}`, o: { method: 'POST', url: '/v1/batches', headers: consumer, payload: { service: name, items: [item] } } },
    { label: `batch resource ${name}`, o: { method: 'POST', url: '/v1/batches', headers: consumer, payload: { resource: name, operation: 'verify', items: [item] } } },
    {
      label: `application purpose ${name}`,
      o: {
        method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${tokens.consumer}` },
        payload: { resource: '101001/00001', items: ['name'], purposes: [name], basis: 'test', validTo: '2030-01-01', dailyQuota: 10 },
      },
    },
    {
      label: `application item ${name}`,
      o: {
        method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${tokens.consumer}` },
        payload: { resource: '101001/00001', items: [name], purposes: ['SA-01'], basis: 'test', validTo: '2030-01-01', dailyQuota: 10 },
      },
    },
  )
}

  return { probes, seen }
}

/** Sends every probe (six at a time); the failures, labelled. */
export async function runProbes(app: FastifyInstance, probes: Probe[]): Promise<string[]> {
  const failures: string[] = []
  let next = 0
  const worker = async () => {
    while (next < probes.length) {
      const { label, o } = probes[next++]
      const res = await app.inject(o)
      if (res.statusCode >= 500) {
        failures.push(`${label}: HTTP ${res.statusCode} ${res.body.slice(0, 160)}`)
        continue
      }
      if (res.statusCode < 400) continue
      let code: unknown
      try {
        code = res.json().code
      } catch {
        code = undefined
      }
      if (!String(res.headers['content-type']).startsWith('application/problem+json') || typeof code !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(code)) {
        failures.push(`${label}: HTTP ${res.statusCode} not problem+json with a code: ${res.body.slice(0, 160)}`)
      }
    }
  }
  await Promise.all(Array.from({ length: 6 }, worker))
  return failures
}
