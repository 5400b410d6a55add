// Security headers on every response (@fastify/helmet): the API, /docs, /workbench, problems
// and 404s alike. One Content-Security-Policy for the whole node: what the workbench (Vue 3 +
// Element Plus) and Swagger UI at /docs both live with — scripts only from this origin,
// inline styles allowed (both set style attributes: popover positions, column widths),
// images and fonts from this origin or data: URLs (Swagger UI's icons), fetch only to this
// origin, never framed. JSON answers carry it too, harmlessly.
// HSTS: a year, subdomains included; browsers ignore it on plain http (npm start's default).
import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'

export const CSP_DIRECTIVES = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'manifest-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
} as const

export default fp(
  async function securityHeaders(app) {
    await app.register(helmet, {
      global: true,
      contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES as unknown as Record<string, string[]> },
      strictTransportSecurity: { maxAge: 365 * 86400, includeSubDomains: true },
      referrerPolicy: { policy: 'no-referrer' },
      // The workbench and /docs are same-origin; API clients are servers (CORP does not bind them).
      crossOriginResourcePolicy: { policy: 'same-origin' },
    })
  },
  { name: 'security-headers' },
)
