// Calls to the gateway with the person's session cookie; every state-changing call carries the
// session's CSRF token (x-csrf-token, from GET /v1/session). A 401 means the session has ended:
// the workbench shows the sign-in page again.
import { reactive } from 'vue'
import { codeWords } from './i18n.js'

export const session = reactive({ state: 'loading', person: null, department: null, roles: [], csrfToken: null })
const SAFE = new Set(['GET', 'HEAD'])
const signedOut = () => Object.assign(session, { state: 'signed-out', person: null, department: null, roles: [], csrfToken: null })

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.code ? codeWords(problem.code) : `HTTP ${status}`)
    this.status = status
    this.problem = problem ?? {}
  }
}

export function headers(method, extra = {}) {
  const h = { accept: 'application/json', ...extra }
  if (!SAFE.has(method) && session.csrfToken) h['x-csrf-token'] = session.csrfToken
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
  if (!res.ok) {
    if (res.status === 401 && session.state === 'signed-in') signedOut()
    throw new ApiError(res.status, typeof data === 'object' ? data : undefined)
  }
  return { data, etag: res.headers.get('etag') }
}

// A file (CSV, XLSX, the signed statement) fetched with the same credentials, then saved.
export async function download(url, filename) {
  const res = await fetch(url, { headers: headers('GET', { accept: '*/*' }), credentials: 'same-origin' })
  if (!res.ok) {
    if (res.status === 401) signedOut()
    throw new ApiError(res.status, await res.json().catch(() => undefined))
  }
  const blob = await res.blob()
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  a.download = filename
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000)
}

// Who is signed in: GET /v1/session (the person, their department and roles, the CSRF token).
export async function loadSession() {
  try {
    const { data } = await api('GET', '/v1/session')
    Object.assign(session, { state: 'signed-in', ...data })
  } catch {
    signedOut()
  }
}

// Signing in leaves the workbench for the identity provider and comes back to this page.
export function signIn() {
  location.assign(`/workbench/auth/login?returnTo=${encodeURIComponent(location.pathname)}`)
}

// Ends the session here (with the CSRF token), then at the identity provider: the gateway
// answers {redirectTo} to JSON callers (a fetch must not follow the 303 to another origin).
export async function signOut() {
  let to = '/workbench/'
  try {
    const res = await fetch('/workbench/auth/logout', { method: 'POST', headers: headers('POST'), credentials: 'same-origin', redirect: 'manual' })
    if (res.ok) to = (await res.json()).redirectTo ?? to
  } catch { /* the session is dropped below either way */ }
  signedOut()
  location.assign(to)
}

export const hasRole = (r) => session.roles.includes(r)
