// Tongban audit console: plain ES module, no build step. Calls the auditor JSON APIs with
// the bearer token kept in sessionStorage. Every value from the server is put into the page
// as text (never as HTML). The raw subject id goes only into POST bodies, never a URL.
import uPlot from '/console/vendor/uplot/uPlot.esm.js'

const $ = (sel) => document.querySelector(sel)
const KEY = 'tongban.audit.token'
let token = sessionStorage.getItem(KEY) || ''
let searchState = { body: null, cursor: null }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v
    else if (k === 'dataset') Object.assign(e.dataset, v)
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v)
    else e.setAttribute(k, v)
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c))
  return e
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.code || `HTTP ${status}`)
    this.status = status
    this.problem = problem
  }
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  const json = text ? JSON.parse(text) : null
  if (!res.ok) {
    if (res.status === 401) signOut('The token was refused or has expired: sign in again.')
    throw new ApiError(res.status, json)
  }
  return json
}

const iso = (v) => (v ? new Date(v).toISOString() : undefined)
const formValues = (form) => {
  const out = {}
  for (const [k, v] of new FormData(form).entries()) {
    if (typeof v !== 'string' || v.trim() === '') continue
    out[k] = form.elements[k]?.type === 'datetime-local' ? iso(v) : v.trim()
  }
  return out
}
const fmtTime = (t) => new Date(t).toLocaleString('zh-CN', { hour12: false })

// ---- sign in ------------------------------------------------------------------------
async function signIn(t) {
  token = t.trim()
  $('#login-error').textContent = ''
  try {
    const heads = await api('GET', '/v1/audit/heads')
    sessionStorage.setItem(KEY, token)
    const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))
    $('#who').textContent = `${claims.sub} · node ${heads.node} · ${heads.heads.length} chain(s)`
    $('#login').hidden = true
    $('#app').hidden = false
    document.body.dataset.state = 'signed-in'
  } catch (e) {
    token = ''
    sessionStorage.removeItem(KEY)
    $('#login-error').textContent = e.status === 403 ? 'This token has no auditor role.' : `Sign-in failed: ${e.message}`
  }
}

function signOut(message = '') {
  token = ''
  sessionStorage.removeItem(KEY)
  $('#app').hidden = true
  $('#login').hidden = false
  $('#login-error').textContent = message
  $('#who').textContent = ''
  document.body.dataset.state = 'signed-out'
}

$('#login-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  signIn($('#token').value)
})
$('#logout').addEventListener('click', () => signOut())

for (const b of document.querySelectorAll('nav button[data-tab]')) {
  b.addEventListener('click', () => {
    for (const x of document.querySelectorAll('nav button[data-tab]')) x.classList.toggle('active', x === b)
    for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== `tab-${b.dataset.tab}`
    if (b.dataset.tab === 'stats' && !$('#stats-totals').childElementCount) loadStats()
  })
}

// ---- search -------------------------------------------------------------------------
function recordRow(hit) {
  const r = hit.record
  const consumer = r.consumer ? `${r.consumer.system} (${r.consumer.department})` : '—'
  return el('tr', { dataset: { requestId: r.requestId }, onclick: () => showRecord(r.requestId) },
    el('td', {}, fmtTime(r.time)),
    el('td', {}, el('span', { class: `badge ${r.decision}` }, r.decision), r.reason ? ` ${r.reason}` : ''),
    el('td', {}, consumer),
    el('td', {}, `${r.resource ?? '—'} · ${r.operation ?? '—'}`),
    el('td', {}, r.purpose ?? '—'),
    el('td', {}, r.caseId ?? '—'),
    el('td', {}, el('code', {}, r.requestId)),
  )
}

async function runSearch(more = false) {
  const tbody = $('#results tbody')
  if (!more) {
    const body = formValues($('#search-form'))
    body.limit = 50
    searchState = { body, cursor: null }
    tbody.replaceChildren()
    $('#record-detail').hidden = true
  }
  $('#search-status').textContent = 'Searching…'
  try {
    const body = { ...searchState.body, ...(searchState.cursor ? { cursor: searchState.cursor } : {}) }
    const res = await api('POST', '/v1/audit/records/search', body)
    tbody.append(...res.items.map(recordRow))
    searchState.cursor = res.nextCursor
    $('#more').hidden = !res.nextCursor
    $('#search-status').textContent = `${tbody.childElementCount} record(s)${res.nextCursor ? ', more available' : ''}`
  } catch (e) {
    $('#search-status').textContent = `Search failed: ${e.message}`
  }
}
$('#search-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  runSearch(false)
})
$('#more').addEventListener('click', () => runSearch(true))

async function showRecord(requestId) {
  const pre = $('#record-detail')
  try {
    const r = await api('GET', `/v1/audit/records/${encodeURIComponent(requestId)}`)
    const v = r.verified
    pre.textContent = `leaf ${v.leaf ? 'ok' : 'MISMATCH'} · batch root ${v.root ? 'ok' : 'MISMATCH'} · ${r.chain}#${r.seq}/${r.idx}\n\n` +
      JSON.stringify({ record: r.record, checkpoint: r.evidence?.checkpoint, path: r.evidence?.path }, null, 2)
    pre.hidden = false
  } catch (e) {
    pre.textContent = `Could not load the record: ${e.message}`
    pre.hidden = false
  }
}

// ---- subject report -----------------------------------------------------------------
$('#subject-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const out = $('#subject-report')
  out.replaceChildren(el('p', { class: 'muted' }, 'Loading…'))
  try {
    const rep = await api('POST', '/v1/audit/subjects/report', formValues(ev.target))
    const depts = el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'Department'), el('th', {}, 'Accesses'), el('th', {}, 'Refused'), el('th', {}, 'Purposes'), el('th', {}, 'First'), el('th', {}, 'Last'))),
      el('tbody', {}, rep.departments.map((d) => el('tr', {},
        el('td', {}, d.name ? `${d.name} (${d.department})` : d.department ?? '—'),
        el('td', {}, d.accesses), el('td', {}, d.refused),
        el('td', {}, d.purposes.map((p) => `${p.name ?? p.code} ×${p.count}`).join('; ')),
        el('td', {}, fmtTime(d.first)), el('td', {}, fmtTime(d.last))))))
    const list = el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Department'), el('th', {}, 'Resource'), el('th', {}, 'Purpose'), el('th', {}, 'Case'), el('th', {}, 'Decision'))),
      el('tbody', {}, rep.accesses.map((a) => el('tr', {},
        el('td', {}, fmtTime(a.time)), el('td', {}, a.departmentName ?? a.department ?? '—'),
        el('td', {}, a.resourceName ?? a.resource ?? '—'), el('td', {}, a.purposeName ?? a.purpose ?? '—'),
        el('td', {}, a.caseId ?? '—'), el('td', {}, el('span', { class: `badge ${a.decision}` }, a.decision))))))
    out.replaceChildren(
      el('p', { id: 'subject-summary' }, `Subject ${rep.subject.masked ?? rep.subject.hash}: ${rep.total} access(es) by ${rep.departments.length} department(s).`),
      el('h3', {}, 'Departments'), depts, el('h3', {}, 'Accesses'), list,
      el('p', { class: 'muted' }, rep.note),
    )
    ev.target.elements.subject.value = ''
  } catch (e) {
    out.replaceChildren(el('p', { class: 'error' }, `Report failed: ${e.message}`))
  }
})

// ---- integrity ----------------------------------------------------------------------
$('#integrity-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const v = formValues(ev.target)
  const q = new URLSearchParams()
  if (v.from) q.set('from', v.from)
  if (v.to) q.set('to', v.to)
  if (!v.from && !v.to) q.set('all', 'true')
  if (v.head) q.set('head', v.head)
  const out = $('#integrity-result')
  out.replaceChildren(el('p', { class: 'muted' }, 'Verifying…'))
  try {
    const r = await api('GET', `/v1/audit/integrity?${q}`)
    const f = r.firstFailure
    out.replaceChildren(
      el('div', { class: `status ${r.ok ? 'ok' : 'bad'}`, id: 'integrity-status' },
        r.ok ? `Intact: ${r.records} records in ${r.checkpoints} signed batches verified` : `TAMPERING DETECTED: ${f.kind} at ${f.chain}#${f.seq}${f.idx !== undefined ? `/${f.idx}` : ''} — ${f.detail}`),
      el('p', { class: 'muted' }, `${r.anchorsChecked} anchor(s) checked · ${r.retainedBatches} batch(es) retained (exported) · ${r.elapsedMs} ms`),
      ...r.warnings.map((w) => el('p', { class: 'muted' }, `⚠ ${w}`)),
      r.failureCount > 1 ? el('pre', {}, JSON.stringify(r.failures, null, 2)) : null,
    )
  } catch (e) {
    out.replaceChildren(el('p', { class: 'error' }, `Integrity check failed to run: ${e.message}`))
  }
})
$('#anchor-button').addEventListener('click', async () => {
  try {
    const r = await api('POST', '/v1/audit/anchors')
    $('#integrity-result').replaceChildren(el('p', {}, `Anchored ${r.anchors.length} chain head(s). Keep these hashes:`), el('pre', {}, r.anchors.map((a) => `${a.chain}#${a.seq} ${a.hash}`).join('\n')))
  } catch (e) {
    $('#integrity-result').replaceChildren(el('p', { class: 'error' }, `Anchoring failed: ${e.message}`))
  }
})

// ---- stats --------------------------------------------------------------------------
const charts = []
function bars(target, rows, label, value, bad) {
  const max = Math.max(1, ...rows.map(value))
  target.replaceChildren(...rows.slice(0, 12).map((r) => {
    const span = el('span', { class: bad ? 'bad' : '' })
    span.style.width = `${(100 * value(r)) / max}%`
    return el('div', { class: 'row' }, el('span', { class: 'label', title: label(r) }, label(r)), el('div', { class: 'bar' }, span), el('span', { class: 'n' }, value(r)))
  }))
  if (!rows.length) target.replaceChildren(el('p', { class: 'muted' }, 'none'))
}

// Every day of the range, also those without a record (days are in Asia/Shanghai).
function allDays(from, to, byDay) {
  const have = new Map(byDay.map((d) => [d.day, d]))
  const out = []
  const dayOf = (ms) => new Date(ms + 8 * 3600_000).toISOString().slice(0, 10)
  const last = dayOf(Date.parse(to) - 1)
  for (let ms = Date.parse(from), n = 0; n < 400; ms += 86400_000, n++) {
    const day = dayOf(ms)
    out.push(have.get(day) ?? { day, total: 0, allowed: 0, denied: 0, failed: 0, latency: { p50: null, p95: null } })
    if (day >= last) break
  }
  return out
}

function chart(target, title, days, series) {
  const xs = days.map((d) => Date.parse(`${d.day}T00:00:00+08:00`) / 1000)
  const width = Math.max(320, target.clientWidth || 800)
  const opts = {
    width, height: 220,
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: true } }))],
    axes: [{}, { size: 60 }],
    scales: { x: { time: true, range: () => [xs[0] - 43200, xs[xs.length - 1] + 43200] } },
  }
  const data = [xs, ...series.map((s) => days.map(s.value))]
  target.replaceChildren()
  charts.push(new uPlot(opts, data, target))
}

async function loadStats() {
  const v = formValues($('#stats-form'))
  const q = new URLSearchParams(v)
  try {
    const s = await api('GET', `/v1/audit/stats?${q}`)
    const t = s.totals
    const pct = (x) => `${(x * 100).toFixed(1)}%`
    $('#stats-totals').replaceChildren(
      el('div', {}, el('b', { id: 'stats-total' }, t.total), 'queries'),
      el('div', {}, el('b', {}, pct(t.denialRate)), 'denied'),
      el('div', {}, el('b', {}, pct(t.failureRate)), 'failed'),
      el('div', {}, el('b', {}, t.latency.p50 ?? '—'), 'p50 ms'),
      el('div', {}, el('b', {}, t.latency.p95 ?? '—'), 'p95 ms'),
      el('div', {}, el('b', {}, t.latency.p99 ?? '—'), 'p99 ms'),
    )
    while (charts.length) charts.pop().destroy()
    const days = allDays(s.from, s.to, s.byDay)
    chart($('#chart-volume'), 'Queries per day', days, [
      { label: 'allowed', color: '#1e7b34', value: (d) => d.allowed },
      { label: 'denied', color: '#9a6700', value: (d) => d.denied },
      { label: 'failed', color: '#b3261e', value: (d) => d.failed },
    ])
    chart($('#chart-latency'), 'Latency', days, [
      { label: 'p50', color: '#3d6fa8', value: (d) => d.latency.p50 },
      { label: 'p95', color: '#b3261e', value: (d) => d.latency.p95 },
    ])
    bars($('#bars-reason'), s.byReason, (r) => r.reason, (r) => r.count, true)
    bars($('#bars-resource'), s.byResource, (r) => r.name ?? r.resource ?? '—', (r) => r.total)
    bars($('#bars-department'), s.byDepartment, (r) => r.name ?? r.department ?? '—', (r) => r.total)
    bars($('#bars-tier'), s.byTier, (r) => r.tier ?? '—', (r) => r.total)
    document.body.dataset.stats = 'loaded'
  } catch (e) {
    $('#stats-totals').replaceChildren(el('p', { class: 'error' }, `Stats failed: ${e.message}`))
  }
}
$('#stats-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  loadStats()
})

if (token) signIn(token)
else document.body.dataset.state = 'signed-out'
