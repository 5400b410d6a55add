// The route schemas of src/licences: the licence document is the library's own schema
// (schemas/licences/list.response.schema.json), so what the library issues is what verify
// accepts, with no second copy to drift.
import { loadSchemaFile } from '../catalog/files.js'
import { CHECKS } from './verifier.js'

const HOLDER_ID = { type: 'string', pattern: '^[0-9A-Z]{18}$', description: '申请人（持证主体）的公民身份号码（GB 11643）或统一社会信用代码（GB 32100）' }

export function licenceDocumentSchema(schemasDir: string): Record<string, unknown> {
  const list = loadSchemaFile(schemasDir, 'licences/list.response.schema.json') as {
    properties: { licences: { items: { properties: { licence: Record<string, unknown> } } } }
  }
  return list.properties.licences.items.properties.licence
}

export function verifyBodySchema(schemasDir: string) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['holderId'],
    description: '出示的电子证照（licence），或其证照编号（licenceNumber），二者择一；以及申请人的持证主体代码。',
    oneOf: [{ required: ['licence'] }, { required: ['licenceNumber'] }],
    properties: {
      licence: licenceDocumentSchema(schemasDir),
      licenceNumber: { type: 'string', minLength: 1, maxLength: 64, description: '证照编号：核验证照库所存的该证照' },
      holderId: HOLDER_ID,
      holderName: { type: 'string', minLength: 1, maxLength: 128, description: '申请人姓名或名称（出示证照时与持证主体比对）' },
    },
  } as const
}

export const verdictSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['valid', 'licenceNumber', 'typeCode', 'checkedOn', 'checks'],
  properties: {
    valid: { type: 'boolean', description: '全部核验项通过为 true' },
    code: { type: 'string', description: '第一个未通过核验项的问题代码（docs/problems.md）' },
    licenceNumber: { type: 'string' },
    typeCode: { type: 'string' },
    checkedOn: { type: 'string', description: '核验日期（北京时间）' },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['check', 'result'],
        properties: {
          check: { enum: [...CHECKS] },
          result: { enum: ['pass', 'fail', 'skipped'] },
          code: { type: 'string' },
          detail: { type: 'string' },
        },
      },
    },
  },
} as const

export const lookupBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['holderId'],
  properties: {
    holderId: HOLDER_ID,
    typeCode: { type: 'string', pattern: '^[A-Z0-9]{2,16}$', description: '证照类型代码（YYZZ 营业执照、JMSFZ 居民身份证电子证照、BDCQZ 不动产权证书）；不填：全部' },
  },
} as const
