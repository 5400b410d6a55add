// Calls to the gateway: with the session cookie (and its CSRF token on state changes), or,
// for development, with a system token held in this tab's sessionStorage.
import { reactive } from 'vue'
import { codeWords } from './i18n.js'

export const session = reactive({ state: 'loading', person: null, department: null, roles: [], csrfToken: null, system: null })
const TOKEN_KEY = 'tongban.workbench.token'

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.code ? codeWords(problem.code) : `HTTP ${status}`)
    this.status = status
    this.problem = problem ?? {}
  }
}

export function headers(method, extra = {}) {
  const h = { accept: 'application/json', ...extra }
  const token = sessionStorage.getItem(TOKEN_KEY)
  if (token) h.authorization = `Bearer ${token}`
  else if (method !== 'GET' && session.csrfToken) h['x-csrf-token'] = session.csrfToken
  return h
}

export async function api(method, url, body, extra = {}) {
  const init = { method, headers: headers(method, extra), credentials: 'same-origin' }
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const res = await fetch(url, init)
  const type = res.headers.get('content-type') ?? ''
  const data = type.includes('json') ? await res.json() : await res.text()
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : undefined)
  return { data, etag: res.headers.get('etag') }
}

// A file (CSV, XLSX, the signed statement) fetched with the same credentials, then saved.
export async function download(url, filename) {
  const res = await fetch(url, { headers: headers('GET', { accept: '*/*' }), credentials: 'same-origin' })
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => undefined))
  const blob = await res.blob()
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  a.download = filename
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000)
}

// Who is signed in: the person's session (GET /v1/session) or a development token.
export async function loadSession() {
  if (sessionStorage.getItem(TOKEN_KEY)) {
    try {
      await api('GET', '/v1/catalog/resources') // the token is accepted
      const token = sessionStorage.getItem(TOKEN_KEY)
      const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))
      Object.assign(session, { state: 'signed-in', person: null, system: claims.sub, department: { code: claims.dept, name: claims.dept }, roles: claims.roles ?? [], csrfToken: null })
      return
    } catch {
      sessionStorage.removeItem(TOKEN_KEY)
    }
  }
  try {
    const { data } = await api('GET', '/v1/session')
    Object.assign(session, { state: 'signed-in', ...data, system: null })
  } catch {
    Object.assign(session, { state: 'signed-out', person: null, roles: [], csrfToken: null, system: null })
  }
}

export async function signInWithToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token)
  await loadSession()
  if (session.state !== 'signed-in') throw new Error('token refused')
}

export async function signOut() {
  if (sessionStorage.getItem(TOKEN_KEY)) sessionStorage.removeItem(TOKEN_KEY)
  else await api('POST', '/workbench/auth/logout').catch(() => {})
  await loadSession()
}

export const hasRole = (r) => session.roles.includes(r)
