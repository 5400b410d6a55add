// The filter step: least data — only the items the authorization released leave the node.
export function filterItems(answer: unknown, items: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) return out
  for (const [k, v] of Object.entries(answer)) if (items.has(k)) out[k] = v
  return out
}
