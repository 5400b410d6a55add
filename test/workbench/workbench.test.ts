// The workbench (工作台) end to end in headless Chromium (Debian's chromium, driven by
// playwright-core; no browser download), against a real node (PostgreSQL, Redis, HTTP on
// loopback) and the development OpenID Connect provider (dev/oidc). Each person signs in
// through the provider's login page, filled in here, and signs out through the workbench
// (which ends the session at the provider too) before the next one: the admin registers a
// conditional resource from the schema-driven form, the applicant applies, the reviewer
// approves with a narrower quota from the inbox, the applicant's system queries under the
// grant (system token), the auditor finds the query and the subject report and exports.
// Screenshots of every screen go to test/artifacts/workbench/.
import t from 'tap'
import type { Page } from 'playwright-core'
import { context } from '../helpers/harness.js'
import { startWorkbench, workbenchMissing } from '../helpers/workbench-browser.js'
import { samplePersons } from '../../dev/providers/population.js'

// Eight sign-ins through the provider in a real browser on a shared machine: more than the
// default 120 s per file.
t.setTimeout(300_000)

const missing = workbenchMissing()
if (missing) {
  t.fail(missing)
  process.exit(1)
}

const w = await startWorkbench('workbench')
const { h, oidc, base, errors, requests, open, shot, providerLogin, signIn, signOut } = w
t.teardown(() => w.close())

// System tokens: for the applicant's system's query and the other admin's concurrent change.
const tokens = {
  admin: await h.token('js-catalog-admin'),
  applicant: await h.token('jn-civil-affairs'),
}
const subject = samplePersons(1)[0]

async function pick(page: Page, selectId: string, optionText: string) {
  await page.click(`.el-select:has(#${selectId})`)
  // The option list of this select (aria-controls), not one still closing elsewhere.
  const list = await page.getAttribute(`#${selectId}`, 'aria-controls')
  await page.locator(`[id="${list}"] .el-select-dropdown__item`, { hasText: optionText }).first().click()
  // Chosen: the select shows the option's words.
  await page.waitForFunction(([id, text]) => document.getElementById(id)?.closest('.el-select')?.textContent?.includes(text), [selectId, optionText])
}
t.test('the shell: index.html for client routes, long cache for assets, problem codes in words', async (t) => {
  for (const path of ['/workbench', '/workbench/', '/workbench/catalogue/103002/00002', '/workbench/audit']) {
    const res = await fetch(`${base}${path}`)
    t.equal(res.status, 200, path)
    t.match(res.headers.get('content-type'), /text\/html/)
    t.match(res.headers.get('content-security-policy'), /script-src 'self'/)
    t.match(await res.text(), /<div id="app">/)
  }
  const html = await (await fetch(`${base}/workbench/`)).text()
  const asset = html.match(/\/workbench\/assets\/[^"]+\.js/)![0]
  const a = await fetch(`${base}${asset}`)
  t.equal(a.status, 200)
  t.match(a.headers.get('cache-control'), /max-age=31536000, immutable/)
  t.equal((await fetch(`${base}/workbench/assets/nope.js`)).status, 404)
  const codes = (await (await fetch(`${base}/v1/problems/codes`)).json()) as { codes: { code: string; zh: string; en: string }[] }
  t.equal(codes.codes.find((c) => c.code === 'POLICY_NO_GRANT')?.zh, '未获授权（无有效共享授权）')
})

t.test('without a session: the sign-in page and nothing else', async (t) => {
  const page = await open('/workbench/audit')
  await page.waitForSelector('#signin')
  t.equal(await page.textContent('#oidc-login'), '统一身份认证登录')
  t.equal(await page.locator('nav').count(), 0, 'no navigation')
  t.equal(await page.locator('#logout').count(), 0, 'no sign-out button')
  t.equal(await page.locator('main > *').count(), 1, 'the main area holds the sign-in section only')
  t.equal(await page.locator('.el-table').count(), 0, 'no data')
  await shot(page, 'signin')
  await page.close()
})

t.test('admin, applicant, reviewer, system, auditor: one grant end to end', async (t) => {
  // (1) the catalogue admin registers a conditional resource from the schema-driven form.
  const admin = await signIn('admin', '张伟')
  await admin.waitForSelector('#resources .el-table__row')
  await shot(admin, 'catalogue')
  await admin.click('#register')
  await admin.waitForSelector('#catalogue-form')
  // Submitting an incomplete entry shows the problem's errors at the fields.
  await admin.fill('#f-code', '103002/00099')
  await admin.click('#save')
  await admin.waitForSelector('.el-form-item__error, .wb-field-error')
  // The problem code in words (src/problems/codes.ts via GET /v1/problems/codes), not the code.
  await admin.waitForSelector('.el-message--error:has-text("目录条目内容不符合规范")')
  await shot(admin, 'catalogue-form-errors')
  const fill = async (id: string, v: string) => admin.fill(`#${id}`, v)
  await fill('f-name', '测试房产登记信息')
  await fill('f-category-code', '103002')
  await fill('f-category-name', '不动产登记')
  await fill('f-provider-name', '江苏省自然资源厅')
  await fill('f-provider-code', '11320000MB0000091R')
  await fill('f-provider-region', '320000')
  await fill('f-summary', '工作台测试登记的有条件共享资源')
  await pick(admin, 'f-format', '(api)')
  await fill('f-items-0-name', 'hasProperty')
  await fill('f-items-0-title', '名下是否有住房登记')
  await pick(admin, 'f-items-0-type', 'boolean')
  await pick(admin, 'f-items-0-shareType', '无条件共享')
  await admin.click('[data-add="/items"]')
  await fill('f-items-1-name', 'properties')
  await fill('f-items-1-title', '不动产权属登记明细')
  await pick(admin, 'f-items-1-type', 'array')
  await pick(admin, 'f-items-1-shareType', '有条件共享')
  await pick(admin, 'f-sharing-type', '有条件共享')
  await fill('f-sharing-condition', '社会救助核对')
  await pick(admin, 'f-sharing-method', 'api')
  await pick(admin, 'f-opening-type', 'none')
  await pick(admin, 'f-updateCycle', 'daily')
  await fill('f-publishedAt', '2026-01-01')
  // The service binding: the natural resources department's property register.
  await admin.click('[data-add="/service/operations"]')
  await fill('f-service-operations-key-0', 'query')
  await fill('f-service-operations-query-requestSchema', 'property/detail.request.schema.json')
  await fill('f-service-operations-query-responseSchema', 'property/detail.response.schema.json')
  await fill('f-service-operations-query-subjectField', 'idNumber')
  await admin.click('.el-switch:has(#f-service-operations-query-idempotent)')
  await fill('f-service-upstream-name', 'nr-property')
  await pick(admin, 'f-service-upstream-method', 'POST')
  await fill('f-service-upstream-path', '/v1/property/detail')
  await admin.fill('#f-service-upstream-timeoutMs input, input#f-service-upstream-timeoutMs', '3000')
  await admin.fill('#f-service-upstream-retries input, input#f-service-upstream-retries', '1')
  await shot(admin, 'catalogue-form')
  await admin.click('#save')
  await admin.waitForSelector('#resource:has-text("103002/00099"), .el-message--error')
  t.notOk(await admin.locator('.el-message--error').count(), `saved: ${await admin.locator('.el-message--error, .el-form-item__error, .wb-field-error').allTextContents()}`)
  t.match(await admin.textContent('#resource'), /有条件共享/)
  await shot(admin, 'catalogue-resource')
  // Someone else changes it while the admin edits: the save is refused 412 and explained,
  // with reload-and-compare.
  await admin.click('#edit')
  await admin.waitForSelector('#catalogue-form')
  const url = `/v1/catalog/resources/${encodeURIComponent('103002/00099')}`
  const now = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${tokens.admin}` } })
  const { version: _v, status: _s, heldBy: _h, ...entry } = now.json()
  const other = await h.app.inject({ method: 'PUT', url, headers: { authorization: `Bearer ${tokens.admin}`, 'if-match': now.headers.etag as string }, payload: { ...entry, summary: '另一位管理员修改的摘要' } })
  t.equal(other.statusCode, 200, `the other change: ${other.body.slice(0, 400)}`)
  await admin.fill('#f-name', '测试房产登记信息（修订）')
  await admin.click('#save')
  await admin.waitForSelector('.el-dialog:has-text("该资源已被他人修改")')
  await shot(admin, 'catalogue-conflict')
  await admin.click('#reload-compare')
  await admin.waitForSelector('#diff:has-text("另一位管理员修改的摘要")')
  t.match(await admin.textContent('#diff'), /测试房产登记信息（修订）/)
  await shot(admin, 'catalogue-compare')
  await signOut(admin)

  // (2) the applicant applies for it.
  const applicant = await signIn('applicant', '刘洋', '/workbench/applications')
  await applicant.waitForSelector('#apply')
  await pick(applicant, 'apply-resource', '103002/00099')
  await applicant.click('#apply-items .el-checkbox:has-text("不动产权属登记明细")')
  await pick(applicant, 'apply-purposes', 'SA-01')
  await applicant.keyboard.press('Escape')
  await applicant.fill('#apply-valid-to', new Date(Date.now() + 90 * 86400_000).toISOString().slice(0, 10))
  await applicant.keyboard.press('Enter')
  await applicant.fill('#apply-quota', '100')
  await applicant.fill('#apply-basis', '《社会救助暂行办法》第十一条：核对申请人家庭财产状况')
  await shot(applicant, 'applications-apply')
  await applicant.click('#apply-submit')
  await applicant.waitForSelector('#history .el-table__row:has-text("待审核")')
  await signOut(applicant)

  // (3) the reviewer sees it in the inbox and approves with a narrower quota.
  const reviewer = await signIn('land', '王芳', '/workbench/applications')
  await reviewer.waitForSelector('#inbox .el-table__row:has-text("103002/00099")')
  await shot(reviewer, 'applications-inbox')
  await reviewer.click('#inbox .el-table__row:has-text("103002/00099")')
  await reviewer.fill('#review-quota', '20')
  await reviewer.fill('#review-reason', '符合条件，日调用量核减为 20')
  await shot(reviewer, 'applications-review')
  await reviewer.click('#approve')
  await reviewer.waitForSelector('#grants .el-table__row:has-text("103002/00099")')
  t.match(await reviewer.textContent('#grants'), /0 \/ 20/)
  await signOut(reviewer)
  const granted = await signIn('applicant', '刘洋', '/workbench/applications')
  await granted.waitForSelector('#history .el-table__row:has-text("已批准")')
  await granted.waitForSelector('#grants .el-table__row:has-text("103002/00099")')
  await shot(granted, 'applications-granted')
  await signOut(granted)

  // (4) the applicant's system queries under the grant.
  const caseId = `JN-WORKBENCH-${Date.now()}`
  const q = await h.app.inject({
    method: 'POST', url: `/v1/resources/${encodeURIComponent('103002/00099')}/query`,
    headers: { authorization: `Bearer ${tokens.applicant}`, ...context({ 'tongban-purpose': 'SA-01', 'tongban-case-id': caseId }) },
    payload: { idNumber: subject.idNumber, name: subject.name },
  })
  t.equal(q.statusCode, 200, `query under the grant: ${q.body.slice(0, 200)}`)

  // (5) the auditor finds that query and the person's subject report, and exports both.
  const auditor = await signIn('auditor', '陈静', '/workbench/audit')
  await auditor.fill('#audit-search input[name="caseId"]', caseId)
  await auditor.click('#search-button')
  await auditor.waitForSelector('#search-status:has-text("1 条记录")')
  await auditor.click('#results .el-table__row >> nth=0')
  await auditor.waitForSelector('#record-detail')
  t.match(await auditor.textContent('#record-detail'), /允许/)
  await shot(auditor, 'audit-record')
  await auditor.keyboard.press('Escape')
  await auditor.waitForSelector('#record-detail', { state: 'hidden' })
  const csv = auditor.waitForEvent('download')
  await auditor.click('#export-csv')
  t.match((await csv).suggestedFilename(), /\.csv$/)
  const xlsx = auditor.waitForEvent('download')
  await auditor.click('#export-xlsx')
  t.match((await xlsx).suggestedFilename(), /\.xlsx$/)
  await auditor.click('.el-tabs__item:has-text("数据主体报告")')
  await auditor.fill('#subject-input', subject.idNumber)
  await auditor.click('#subject-button')
  await auditor.waitForSelector('#subject-summary')
  t.match(await auditor.textContent('#subject-report'), /南京市江宁区民政局|11320115MB0000012H/)
  await shot(auditor, 'audit-subject')
  const statement = auditor.waitForEvent('popup')
  await auditor.click('#statement')
  const popup = await statement
  await popup.waitForLoadState()
  t.match(await popup.content(), /本文件由节点密钥签名/, 'the signed statement opens for printing')
  t.notMatch(await popup.content(), new RegExp(subject.idNumber), 'without the raw id number')
  await signOut(auditor)

  t.notOk(requests.some((u) => u.includes(subject.idNumber)), 'the raw id number never appears in a URL')
  t.ok(requests.every((u) => u.startsWith(base) || u.startsWith(oidc.issuer) || u.startsWith('blob:') || u === 'about:blank'), 'nothing is loaded from elsewhere (no CDN): the workbench and the identity provider only')
  t.same(errors, [], 'no script errors')
})

t.test('English switch (remembered), tablet width, keyboard through the main nav', async (t) => {
  const page = await signIn('auditor', '陈静', '/workbench/overview', { width: 800, height: 1024 })
  await page.click('#lang')
  await page.waitForSelector('nav a:has-text("Catalogue")')
  await page.reload()
  await page.waitForSelector('nav a:has-text("Catalogue")')
  t.equal(await page.evaluate(() => document.documentElement.lang), 'en')
  await page.click('#lang')
  await page.waitForSelector('nav a:has-text("资源目录")')
  // Tab from the header into the nav: each link in order, and Enter opens its screen.
  await page.focus('#logout')
  const order: string[] = []
  for (let i = 0; i < 5; i++) {
    await page.keyboard.press('Tab')
    order.push(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.screen ?? ''))
  }
  t.same(order, ['catalogue', 'applications', 'notifications', 'audit', 'overview'])
  for (const screen of order) {
    await page.focus(`nav a[data-screen="${screen}"]`)
    await page.keyboard.press('Enter')
    await page.waitForSelector(`nav a[data-screen="${screen}"][aria-current="page"]`)
    await shot(page, `tablet-${screen}`)
  }
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)
  t.not(outline, 'none', 'the focused link is visibly outlined')
  await page.setViewportSize({ width: 1280, height: 800 })
  for (const screen of order) {
    await page.click(`nav a[data-screen="${screen}"]`)
    await shot(page, `desktop-${screen}`)
  }
  await signOut(page)
})

t.test('a person without a role here is told so in Chinese, and gets no session', async (t) => {
  const page = await open('/workbench/catalogue')
  await providerLogin(page, 'nobody')
  await page.waitForURL((u) => u.href.startsWith(`${base}/workbench/auth/callback`))
  await page.waitForSelector('h1:has-text("无法登录")')
  t.match(await page.textContent('body'), /您的账号在本系统没有可用的角色，请联系本单位管理员/)
  t.match(await page.textContent('body'), /Sign in again/)
  await shot(page, 'signin-no-role')
  t.equal(await page.evaluate(async () => (await fetch('/v1/session')).status), 401)
  await page.close()
})
