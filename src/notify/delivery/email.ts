// One e-mail attempt over SMTP (nodemailer): subject and text Chinese first, English second.
import nodemailer, { type Transporter } from 'nodemailer'
import type { NoticeRow } from './payload.js'

export interface SmtpSettings {
  host: string
  port: number
  secure: boolean
  from: string
  timeoutMs: number
}

export function smtpTransport(s: SmtpSettings): Transporter {
  return nodemailer.createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure,
    connectionTimeout: s.timeoutMs,
    greetingTimeout: s.timeoutMs,
    socketTimeout: s.timeoutMs,
  })
}

export const mailOf = (n: NoticeRow, publicUrl: string) => ({
  subject: `${n.title.zh} | ${n.title.en}`,
  text: [n.body.zh, n.body.en, ...(n.link ? [`${publicUrl.replace(/\/$/, '')}${n.link}`] : [])].join('\n\n'),
})

export async function sendMail(t: Transporter, from: string, to: string, n: NoticeRow, publicUrl: string): Promise<void> {
  try {
    await t.sendMail({ from, to, ...mailOf(n, publicUrl) })
  } catch (err) {
    const e = err as Error & { code?: string; responseCode?: number }
    throw new Error(e.responseCode ? `SMTP ${e.responseCode}` : `SMTP ${e.code ?? e.message}`)
  }
}
