// What a browser sees when its sign-in fails: a short Chinese page (English second) naming
// the problem in words, with a way back. API clients get problem+json as everywhere.
import { PROBLEM_CODES, STATUS_FALLBACK, type CodeInfo } from '../problems/codes.js'
import type { Problem } from '../problems/problem.js'

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

export function signInFailurePage(p: Problem, requestId: string): string {
  const info: Pick<CodeInfo, 'zh' | 'en'> = (PROBLEM_CODES as Record<string, CodeInfo>)[p.code] ?? STATUS_FALLBACK
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>无法登录 · 通办工作台</title>
<style>body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}.en{color:#666}</style>
</head><body>
<h1>无法登录</h1>
<p>${esc(info.zh)}</p>
<p class="en">${esc(info.en)}</p>
<p><a href="/workbench/auth/login">重新登录</a> <span class="en">Sign in again</span></p>
<p class="en"><small>请求编号 Request id: ${esc(requestId)}</small></p>
</body></html>`
}
