// People's sessions, server-side in Redis (under the node's key prefix): the browser holds
// only a random id. Keys are the id's SHA-256, so a Redis dump holds no usable cookie.
// Idle expiry slides with every request; the absolute limit never moves. An ended session
// is kept (unusable) for a grace period so the answer can say "expired", not "missing".
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { RedisClient } from '../stores/redis.js'
import type { Role } from '../auth/principal.js'
import type { RegionTier } from '../gb/region.js'

export interface PersonSession {
  person: { sub: string; name: string }
  department: { code: string; name: string }
  region: string
  tier: RegionTier
  roles: Role[]
  csrfToken: string
  createdAt: number
  idleExpiresAt: number
  absoluteExpiresAt: number
  /** For RP-initiated logout (id_token_hint); never leaves the server. */
  idToken?: string
}

export type SessionLookup =
  | { state: 'active'; id: string; session: PersonSession }
  | { state: 'expired' }
  | { state: 'missing' }

/** How long an ended session is remembered as ended. */
const ENDED_GRACE_MS = 15 * 60_000
/** Sliding refreshes are written at most this often (one Redis write per request is waste). */
const TOUCH_EVERY_MS = 5_000

const keyOf = (id: string) => `people:session:${createHash('sha256').update(id).digest('base64url')}`
const randomToken = () => randomBytes(32).toString('base64url')

export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

export class SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly limits: { idleMs: number; absoluteMs: number },
  ) {}

  private ttl(s: PersonSession, now: number): number {
    return Math.max(1, Math.min(s.idleExpiresAt, s.absoluteExpiresAt) - now + ENDED_GRACE_MS)
  }

  async create(fields: Omit<PersonSession, 'csrfToken' | 'createdAt' | 'idleExpiresAt' | 'absoluteExpiresAt'>, now = Date.now()): Promise<{ id: string; session: PersonSession }> {
    const id = randomToken()
    const absoluteExpiresAt = now + this.limits.absoluteMs
    const session: PersonSession = {
      ...fields,
      csrfToken: randomToken(),
      createdAt: now,
      idleExpiresAt: Math.min(now + this.limits.idleMs, absoluteExpiresAt),
      absoluteExpiresAt,
    }
    await this.redis.set(keyOf(id), JSON.stringify(session), 'PX', this.ttl(session, now))
    return { id, session }
  }

  /** The session of a cookie value; an active one's idle expiry slides forward. */
  async lookup(id: string, now = Date.now()): Promise<SessionLookup> {
    if (id.length < 16 || id.length > 128) return { state: 'missing' }
    const raw = await this.redis.get(keyOf(id))
    if (raw === null) return { state: 'missing' }
    const session = JSON.parse(raw) as PersonSession
    if (now >= session.idleExpiresAt || now >= session.absoluteExpiresAt) return { state: 'expired' }
    const idleExpiresAt = Math.min(now + this.limits.idleMs, session.absoluteExpiresAt)
    if (idleExpiresAt - session.idleExpiresAt >= TOUCH_EVERY_MS || this.limits.idleMs <= TOUCH_EVERY_MS * 2) {
      session.idleExpiresAt = idleExpiresAt
      // XX: a session signed out meanwhile is not brought back.
      await this.redis.set(keyOf(id), JSON.stringify(session), 'PX', this.ttl(session, now), 'XX')
    }
    return { state: 'active', id, session }
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(keyOf(id))
  }
}

/** A sign-in on its way through the provider: what the callback needs to check its answer. */
export interface PendingSignIn {
  codeVerifier: string
  nonce: string
  returnTo: string
}

const PENDING_MS = 10 * 60_000
const pendingKey = (state: string) => `people:signin:${createHash('sha256').update(state).digest('base64url')}`

export class PendingSignIns {
  constructor(private readonly redis: RedisClient) {}

  static readonly ttlSeconds = PENDING_MS / 1000

  async put(state: string, p: PendingSignIn): Promise<void> {
    await this.redis.set(pendingKey(state), JSON.stringify(p), 'PX', PENDING_MS)
  }

  /** Taken once: a replayed callback finds nothing. */
  async take(state: string): Promise<PendingSignIn | null> {
    const raw = await this.redis.getdel(pendingKey(state))
    return raw === null ? null : (JSON.parse(raw) as PendingSignIn)
  }
}
