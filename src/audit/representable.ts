// What PostgreSQL jsonb can hold exactly: every string except those with U+0000 (refused:
// 22P05) or an unpaired UTF-16 surrogate (not UTF-8: 22P02). Everything else round-trips, so
// the record read back has the same JCS text, and leaf, as the record hashed. One such
// string in a record used to fail the whole group-commit batch.

const UNREPRESENTABLE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const UNREPRESENTABLE_ALL = new RegExp(UNREPRESENTABLE.source, 'g')
// Cheap pre-test: most strings have neither NUL nor any surrogate at all.
const SUSPECT = /[\0\ud800-\udfff]/

export const isRepresentable = (s: string): boolean => !SUSPECT.test(s) || !UNREPRESENTABLE.test(s)

/**
 * A reversible, representable form: JSON string escapes for the offending code units
 * (`\u0000`, `\ud800`) and `\\` for a backslash, so the escaped text cannot be confused with
 * a value that contained the escape's characters.
 */
export const escapeUnrepresentable = (s: string): string =>
  s.replaceAll('\\', '\\\\').replace(UNREPRESENTABLE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

/** True when any string in the value (keys included) cannot be stored as is. */
/**
 * The same question for client input of any depth (a parsed body, a query string): keys and
 * values, iteratively, so a deeply nested body cannot overflow the stack.
 */
export function inputHasUnrepresentable(value: unknown): boolean {
  const stack: unknown[] = [value]
  while (stack.length) {
    const v = stack.pop()
    if (typeof v === 'string') {
      if (!isRepresentable(v)) return true
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x)
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (!isRepresentable(k)) return true
        stack.push(x)
      }
    }
  }
  return false
}

export function hasUnrepresentable(value: unknown): boolean {
  if (typeof value === 'string') return !isRepresentable(value)
  if (Array.isArray(value)) return value.some(hasUnrepresentable)
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) if (!isRepresentable(k) || hasUnrepresentable(v)) return true
  }
  return false
}

/**
 * The value with every unrepresentable string escaped, and the paths of what was escaped
 * (`caseId`, `consumer.system`); the same object when nothing needed it.
 */
export function representable<T>(value: T, path = '', escaped: string[] = []): { value: T; escaped: string[] } {
  if (!hasUnrepresentable(value)) return { value, escaped }
  if (typeof value === 'string') {
    escaped.push(path)
    return { value: escapeUnrepresentable(value) as T, escaped }
  }
  if (Array.isArray(value)) {
    return { value: value.map((v, i) => representable(v, `${path}[${i}]`, escaped).value) as T, escaped }
  }
  const out: Record<string, unknown> = {}
  for (const [k0, v] of Object.entries(value as Record<string, unknown>)) {
    const k = isRepresentable(k0) ? k0 : escapeUnrepresentable(k0)
    const p = path ? `${path}.${k}` : k
    if (k !== k0) escaped.push(p)
    out[k] = representable(v, p, escaped).value
  }
  return { value: out as T, escaped }
}
