// The auditor console end to end in headless Chromium (Debian's chromium, driven by
// playwright-core; no browser download): sign in with an auditor token, search, open a
// record, run the integrity check, a subject report and the stats charts; a screenshot is
// saved under test/artifacts/.
import t from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { startNode, context, ROOT } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) {
  // CI installs it (apt-get install chromium); elsewhere say so instead of failing obscurely.
  t.fail(`headless Chromium is needed at ${CHROMIUM} (Debian: apt-get install -y chromium; or set CHROMIUM_PATH)`)
  process.exit(1)
}

const h = await startNode({ tag: 'console' })
await h.app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`
let browser: Browser | null = null
t.teardown(async () => {
  await browser?.close()
  await h.close()
})

const consumer = await h.token('jn-civil-affairs')
const p0 = person(0)
for (const [i, p] of [p0, person(1), p0].entries()) {
  const res = await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${consumer}`, ...context({ 'tongban-case-id': `JN-CONSOLE-${i}` }) }, payload: { idNumber: p.idNumber, name: p.name } })
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
}
const auditorToken = await h.token('js-audit')

browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
})

t.test('sign in, search, record, integrity, subject report, stats — and a screenshot', async (t) => {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 } })
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()) })
  const requests: string[] = []
  page.on('request', (r) => requests.push(r.url()))

  const res = await page.goto(`${base}/console/audit`)
  t.equal(res?.status(), 200)
  t.match(res?.headers()['content-security-policy'] ?? '', /script-src 'self'/)
  await page.waitForSelector('body[data-state="signed-out"]')

  // A consumer token is refused.
  await page.fill('#token', consumer)
  await page.click('#login-button')
  await page.waitForSelector('#login-error:has-text("no auditor role")')

  await page.fill('#token', auditorToken)
  await page.click('#login-button')
  await page.waitForSelector('body[data-state="signed-in"]')
  t.match(await page.textContent('#who'), /js-audit/)

  // Search: by case id, then everything with paging.
  await page.fill('#search-form input[name="caseId"]', 'JN-CONSOLE-1')
  await page.click('#search-button')
  await page.waitForSelector('#search-status:has-text("1 record")')
  await page.fill('#search-form input[name="caseId"]', '')
  await page.selectOption('#search-form select[name="kind"]', 'query')
  await page.click('#search-button')
  await page.waitForSelector('#results tbody tr')
  t.equal(await page.locator('#results tbody tr').count(), 3)
  await page.click('#results tbody tr >> nth=0')
  await page.waitForSelector('#record-detail:has-text("leaf ok")')
  t.match(await page.textContent('#record-detail'), /batch root ok/)

  // Subject search: the raw id goes in a POST body only.
  await page.fill('#search-form input[name="subject"]', p0.idNumber)
  await page.click('#search-button')
  await page.waitForSelector('#search-status:has-text("2 record")')

  // Integrity.
  await page.click('nav button[data-tab="integrity"]')
  await page.click('#integrity-button')
  await page.waitForSelector('#integrity-status')
  t.match(await page.textContent('#integrity-status'), /^Intact: \d+ records/)

  // Subject report.
  await page.click('nav button[data-tab="subject"]')
  await page.fill('#subject-input', p0.idNumber)
  await page.click('#subject-button')
  await page.waitForSelector('#subject-summary')
  t.match(await page.textContent('#subject-summary'), /2 access\(es\) by 1 department/)
  t.match(await page.textContent('#subject-report'), /南京市江宁区民政局/)

  // Stats with charts (uPlot, served locally).
  await page.click('nav button[data-tab="stats"]')
  await page.waitForSelector('body[data-stats="loaded"]')
  await page.waitForSelector('#chart-volume canvas')
  t.ok(Number(await page.textContent('#stats-total')) >= 3)
  t.ok(await page.locator('#bars-resource .row').count() >= 1)

  mkdirSync(join(ROOT, 'test/artifacts'), { recursive: true })
  const shot = join(ROOT, 'test/artifacts/console-stats.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.ok(existsSync(shot), `screenshot at ${shot}`)
  await page.click('nav button[data-tab="subject"]')
  await page.screenshot({ path: join(ROOT, 'test/artifacts/console-subject.png'), fullPage: true })

  // The 403 is the consumer token refused above; nothing else may fail.
  t.same(errors.filter((e) => !/status of 403/.test(e)), [], 'no script errors, no CSP violations, no missing files')
  t.notOk(requests.some((u) => u.includes(p0.idNumber)), 'the raw id number never appears in a URL')
  t.ok(requests.every((u) => u.startsWith(base)), 'nothing is loaded from elsewhere (no CDN)')

  // Sign out clears the token.
  await page.click('#logout')
  await page.waitForSelector('body[data-state="signed-out"]')
  t.equal(await page.evaluate(() => sessionStorage.getItem('tongban.audit.token')), null)
})
