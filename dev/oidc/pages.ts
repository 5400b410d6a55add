// The development provider's pages: Chinese first, English second; nothing but a form.
import { DEV_PEOPLE } from './people.js'

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const page = (title: string, body: string) => `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}button{margin-top:1rem;padding:.5rem 1.5rem}
.error{color:#b00020}.en{color:#666;font-size:.9em}table{border-collapse:collapse;margin-top:1.5rem;font-size:.9em}td{padding:.15rem .6rem .15rem 0}</style>
</head><body>${body}</body></html>`

export function loginPage(uid: string, error?: string): string {
  const people = DEV_PEOPLE.map((p) => `<tr><td><code>${esc(p.username)}</code></td><td>${esc(p.name)}</td><td>${esc(p.department.name)}</td></tr>`).join('')
  return page('通办 开发用身份提供方 · 登录', `
<h1>通办工作台登录</h1><p class="en">Tongban workbench sign-in (development identity provider)</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="username">用户名 <span class="en">User name</span></label><input id="username" name="username" required autofocus>
<label for="password">密码 <span class="en">Password</span></label><input id="password" name="password" type="password" required>
<button type="submit">登录 <span class="en">Sign in</span></button>
</form>
<table><caption>示例人员（密码均为 <code>tongban</code>）<span class="en">Sample people, password tongban</span></caption>${people}</table>`)
}

/** RP-initiated logout: oidc-provider's form (hidden xsrf) with a confirm button. */
export function logoutPage(form: string): string {
  return page('通办 开发用身份提供方 · 退出', `
<h1>退出登录</h1><p class="en">Sign out of the development identity provider?</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">退出登录 <span class="en">Sign out</span></button>`)
}

export function loggedOutPage(): string {
  return page('通办 开发用身份提供方 · 已退出', '<h1>您已退出登录</h1><p class="en">You have signed out.</p>')
}
