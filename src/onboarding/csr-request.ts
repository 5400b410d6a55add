// The department's side of onboarding: its own key pair and a PKCS#10 request to send to
// the node's operator. The private key never leaves the department.
import { generateKeyPair, createPrivateKey, sign } from 'node:crypto'
import { promisify } from 'node:util'
import forge from 'node-forge'

interface ForgeCsrInfo {
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1
}

/** A new RSA key (native generation: forge's takes seconds) and a CSR with CN = clientId. */
export async function createCertificateRequest(clientId: string, bits = 2048): Promise<{ keyPem: string; csrPem: string }> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: bits,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  const csr = forge.pki.createCertificationRequest()
  csr.publicKey = forge.pki.publicKeyFromPem(publicKey)
  csr.setSubject([{ shortName: 'CN', value: clientId, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class }])
  // What csr.sign does, with Node's RSA and a PKCS#8 key forge need not parse.
  csr.signatureOid = csr.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption
  csr.certificationRequestInfo = (forge.pki as unknown as ForgeCsrInfo).getCertificationRequestInfo(csr)
  const info = Buffer.from(forge.asn1.toDer(csr.certificationRequestInfo).getBytes(), 'binary')
  csr.signature = sign('sha256', info, createPrivateKey(privateKey)).toString('binary')
  return { keyPem: privateKey, csrPem: forge.pki.certificationRequestToPem(csr) }
}
