// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per group
// (project file, package, node internals, GC, idle).
//   node --import tsx bench/profile.ts <file.cpuprofile> [top]
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}

const groupOf = (url: string, fn: string): string => {
  if (fn === '(idle)') return '(idle)'
  if (fn === '(garbage collector)') return '(gc)'
  if (fn === '(program)') return '(program)'
  if (!url) return `(native) ${fn}`.trim()
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m) return m[1]
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:')
  const p = /\/(src|providers)\/(.*)$/.exec(url)
  return p ? `${p[1]}/${p[2]}` : url
}

export function summariseProfile(file: string, top = 25) {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] }
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0))
  let total = 0
  let idle = 0
  const fns = new Map<string, number>()
  const groups = new Map<string, number>()
  for (const [id, us] of self) {
    const n = byId.get(id)!
    const { functionName, url, lineNumber } = n.callFrame
    total += us
    if (functionName === '(idle)') idle += us
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|providers)\//, '$1/')
    const k = `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`
    fns.set(k, (fns.get(k) ?? 0) + us)
    const g = groupOf(url, functionName)
    groups.set(g, (groups.get(g) ?? 0) + us)
  }
  const busy = total - idle
  const pct = (us: number) => +((100 * us) / busy).toFixed(2)
  const sorted = (m: Map<string, number>) => [...m].filter(([k]) => k !== '(idle)' && !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)
  return {
    file,
    busyMs: Math.round(busy / 1000),
    idleMs: Math.round(idle / 1000),
    functions: sorted(fns).map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), pctOfBusy: pct(us) })),
    groups: sorted(groups).map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), pctOfBusy: pct(us) })),
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const s = summariseProfile(process.argv[2], Number(process.argv[3] ?? 30))
  console.log(`busy ${s.busyMs} ms, idle ${s.idleMs} ms`)
  console.table(s.functions)
  console.table(s.groups)
}
