// The simulated licence library service (电子证照库), answering from library.ts. Two
// operations, the two catalogue resources of the library (catalog/110001-*.json):
//   POST /v1/licences/status → the status of one licence by number (and whether the holder
//        id given is its holder), the seal of its record, and the revocation status of a
//        seal certificate (the one asked about, else the record's): no personal content.
//   POST /v1/licences/list   → every licence of a holder, sealed, with its status.
// The request and answer schemas are the gateway's own (schemas/licences/), so the two agree.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { createSimulator, type SimulatorOptions } from '../simulator.js'
import { loadSeals } from '../../seal-pki.js'
import { derToPem } from '../../../src/licences/document.js'
import { parseSm2Certificate } from '../../../src/pki/sm2-x509.js'
import { LicenceLibrary } from './library.js'

const SCHEMAS = path.resolve(import.meta.dirname, '../../../schemas/licences')
const schema = (name: string) => {
  const { $id: _id, $schema: _s, ...rest } = JSON.parse(readFileSync(path.join(SCHEMAS, `${name}.schema.json`), 'utf8'))
  return rest
}

export interface LicenceLibraryOptions extends SimulatorOptions {
  library: LicenceLibrary
}

declare module 'fastify' {
  interface FastifyInstance {
    library: LicenceLibrary
  }
}

interface StatusQuery {
  licenceNumber: string
  holderId: string
  sealCertificateSerial?: string
}

export const buildLicenceLibrary = (opts: LicenceLibraryOptions): FastifyInstance => {
  const app = createSimulator(opts)
  const { library } = opts
  app.decorate('library', library)

  app.post<{ Body: StatusQuery }>('/v1/licences/status', {
    schema: { body: schema('status.request'), response: { 200: schema('status.response') } },
  }, async (request) => {
    const { licenceNumber, holderId, sealCertificateSerial } = request.body
    const record = library.record(licenceNumber)
    if (!record) return { found: false, ...(sealCertificateSerial ? { sealCertificate: library.sealCertificateStatus(sealCertificateSerial) } : {}) }
    const seal = library.document(licenceNumber)!.seal
    const serial = sealCertificateSerial ?? parseSm2Certificate(derToPem(Buffer.from(seal.certificate, 'base64'))).serialHex
    return {
      found: true,
      status: record.status,
      statusChangedOn: record.statusChangedOn,
      supersededBy: record.supersededBy,
      holderMatches: record.doc.holder.id === holderId,
      seal,
      sealCertificate: library.sealCertificateStatus(serial),
    }
  })

  app.post<{ Body: { holderId: string; typeCode?: string } }>('/v1/licences/list', {
    schema: { body: schema('list.request'), response: { 200: schema('list.response') } },
  }, async (request) => {
    const { holderId, typeCode } = request.body
    const records = library.holderLicences(holderId).filter((r) => !typeCode || r.doc.typeCode === typeCode)
    return {
      licences: records.slice(0, 200).map((r) => ({
        status: r.status,
        statusChangedOn: r.statusChangedOn,
        supersededBy: r.supersededBy,
        licence: library.document(r.doc.number)!,
      })),
    }
  })
  return app
}

/** The library with the dev seals of `pkiDir` (certs/seals, made by `tongban pki init`). */
export async function devLicenceLibrary(pkiDir: string): Promise<LicenceLibrary> {
  return new LicenceLibrary(await loadSeals(pkiDir))
}
