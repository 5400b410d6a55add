// A signed-in person as the gateway's usual Principal, and the person's operator id in the
// audit record (docs/audit.md: the provider's subject, never the name).
import { createHash } from 'node:crypto'
import type { Principal } from '../auth/principal.js'
import type { PersonSession } from './sessions.js'

const OPERATOR = /^[A-Za-z0-9._:@-]{1,64}$/

/** The subject as the audit log's operator: itself when it fits the operator syntax, else a digest of it. */
export const operatorIdOf = (sub: string): string =>
  OPERATOR.test(sub) ? sub : `sub:${createHash('sha256').update(sub).digest('base64url').slice(0, 40)}`

export function personPrincipal(s: PersonSession): Principal {
  return Object.freeze({
    system: `person:${operatorIdOf(s.person.sub)}`,
    department: s.department.code,
    region: s.region,
    tier: s.tier,
    roles: Object.freeze([...s.roles]) as Principal['roles'],
    person: Object.freeze({ sub: s.person.sub, name: s.person.name }),
  })
}
