// A small history router: /workbench/<screen>/<rest>. No extra package for five screens.
import { reactive } from 'vue'

export const route = reactive({ screen: 'catalogue', rest: [] })
function read() {
  const parts = location.pathname.replace(/^\/workbench\/?/, '').split('/').filter(Boolean).map(decodeURIComponent)
  route.screen = parts[0] ?? 'catalogue'
  route.rest = parts.slice(1)
}
export function go(path) {
  history.pushState(null, '', `/workbench${path}`)
  read()
}
window.addEventListener('popstate', read)
read()
