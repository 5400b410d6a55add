// A progress bar for long CLI operations, on stderr and only when stderr is a terminal
// (pipes and --json output stay clean). Redraws at most every 100 ms.
export interface Progress {
  update(done: number, total?: number, note?: string): void
  done(message?: string): void
}

const WIDTH = 30

const fmtDuration = (s: number) => {
  if (!Number.isFinite(s) || s < 0) return '?'
  if (s < 60) return `${Math.ceil(s)}s`
  const m = Math.floor(s / 60)
  return m < 60 ? `${m}m${String(Math.ceil(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
}

export function progressBar(label: string, opts: { enabled?: boolean; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr
  const enabled = opts.enabled ?? stream.isTTY === true
  const started = Date.now()
  let last = 0
  let total: number | undefined
  let shown = false
  const draw = (done: number, note?: string) => {
    const elapsed = (Date.now() - started) / 1000
    const rate = elapsed > 0 ? done / elapsed : 0
    let line: string
    if (total && total > 0) {
      const frac = Math.min(1, done / total)
      const full = Math.round(frac * WIDTH)
      const eta = rate > 0 ? (total - done) / rate : Number.NaN
      line = `${label} [${'#'.repeat(full)}${'-'.repeat(WIDTH - full)}] ${done}/${total} ${(frac * 100).toFixed(0)}% ${rate.toFixed(0)}/s eta ${fmtDuration(eta)}`
    } else {
      line = `${label} ${done} ${rate.toFixed(0)}/s`
    }
    if (note) line += ` ${note}`
    stream.write(`\r${line.slice(0, (stream.columns ?? 120) - 1)}\x1b[K`)
    shown = true
  }
  return {
    update(done, t, note) {
      if (t !== undefined) total = t
      if (!enabled) return
      const now = Date.now()
      if (now - last < 100 && (total === undefined || done < total)) return
      last = now
      draw(done, note)
    },
    done(message) {
      if (!enabled) return
      if (shown) stream.write('\r\x1b[K')
      if (message) stream.write(`${message}\n`)
    },
  }
}
