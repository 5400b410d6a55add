// Inclusive time of a V8 .cpuprofile (node --cpu-prof): for each function and each group
// (project file, package, node internals), the share of busy samples whose stack contains it
// (each counted once per stack, so recursion does not count twice). bench/profile.ts gives
// self time; this says what a function costs with everything it calls.
//   node --import tsx bench/profile-inclusive.ts <file.cpuprofile> [top] [filter regex]
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

const groupOf = (url: string, fn: string): string | null => {
  if (fn === '(idle)' || fn === '(root)' || fn === '(program)' || fn === '(garbage collector)') return null
  if (!url) return null
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m) return m[1]
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').replace(/\/.*$/, '')
  const p = /\/(src|providers|bench)\/(.*)$/.exec(url)
  return p ? `${p[1]}/${p[2]}` : url
}

export function inclusiveProfile(file: string, top = 40, filter?: RegExp) {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] }
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<number, number>()
  for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0))
  let busy = 0
  const fns = new Map<string, number>()
  const groups = new Map<string, number>()
  for (const [id, us] of self) {
    const fn = byId.get(id)!.callFrame.functionName
    if (fn === '(idle)') continue
    busy += us
    const seenF = new Set<string>()
    const seenG = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url, lineNumber } = byId.get(cur)!.callFrame
      if (functionName === '(root)') break
      const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|providers|bench)\//, '$1/')
      seenF.add(`${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`)
      const g = groupOf(url, functionName) ?? (functionName.startsWith('(') ? functionName : null)
      if (g) seenG.add(g)
    }
    for (const k of seenF) fns.set(k, (fns.get(k) ?? 0) + us)
    for (const k of seenG) groups.set(k, (groups.get(k) ?? 0) + us)
  }
  const pct = (us: number) => +((100 * us) / busy).toFixed(2)
  const sorted = (m: Map<string, number>) => [...m].filter(([k]) => !filter || filter.test(k)).sort((a, b) => b[1] - a[1]).slice(0, top)
  return {
    file,
    busyMs: Math.round(busy / 1000),
    functions: sorted(fns).map(([name, us]) => ({ name, inclusiveMs: Math.round(us / 1000), pctOfBusy: pct(us) })),
    groups: sorted(groups).map(([name, us]) => ({ name, inclusiveMs: Math.round(us / 1000), pctOfBusy: pct(us) })),
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const s = inclusiveProfile(process.argv[2], Number(process.argv[3] ?? 40), process.argv[4] ? new RegExp(process.argv[4]) : undefined)
  console.log(`busy ${s.busyMs} ms`)
  console.table(s.functions)
  console.table(s.groups)
}
