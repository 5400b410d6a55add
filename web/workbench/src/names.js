// Names instead of codes: resources and the departments that provide them, from the catalogue
// (loaded once per page). A code nobody names is shown as it is.
import { ref } from 'vue'
import { api } from './api.js'

const resources = ref({})
const departments = ref({})
let loading = null
export function loadNames() {
  loading ??= api('GET', '/v1/catalog/resources').then(({ data }) => {
    resources.value = Object.fromEntries(data.resources.map((r) => [r.code, r.name]))
    departments.value = Object.fromEntries(data.resources.filter((r) => r.provider?.code).map((r) => [r.provider.code, r.provider.name]))
  }).catch(() => { loading = null })
  return loading
}
export const resourceName = (code) => (code && resources.value[code] ? `${resources.value[code]}（${code}）` : code ?? '')
export const departmentName = (code) => (code && departments.value[code]) || code || ''
