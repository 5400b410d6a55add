// The department's side of onboarding: its own key pair and a PKCS#10 request to send to
// the node's operator. The private key never leaves the department. The key is RSA or EC
// (P-256 or P-384); the request is written with the @peculiar ASN.1 structures and signed
// with node:crypto (SHA-256 with RSA, or ECDSA with SHA-256 / SHA-384).
import { generateKeyPair, createPrivateKey, sign } from 'node:crypto'
import { promisify } from 'node:util'
import { AsnConvert } from '@peculiar/asn1-schema'
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr'
import { AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509'

/** An RSA modulus length in bits, or an EC curve. */
export type RequestKey = number | 'P-256' | 'P-384'

const CURVES = {
  'P-256': { curve: 'prime256v1', hash: 'sha256', oid: '1.2.840.10045.4.3.2' },
  'P-384': { curve: 'secp384r1', hash: 'sha384', oid: '1.2.840.10045.4.3.3' },
} as const
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11'
const COMMON_NAME = '2.5.4.3'

const toArrayBuffer = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer

/** A new key (native generation) and a CSR with CN = clientId. Default: RSA 2048. */
export async function createCertificateRequest(clientId: string, kind: RequestKey = 2048): Promise<{ keyPem: string; csrPem: string }> {
  const ec = typeof kind === 'string' ? CURVES[kind] : undefined
  const generate = promisify(generateKeyPair)
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const
  const publicKeyEncoding = { type: 'spki', format: 'der' } as const
  const { privateKey, publicKey } = ec
    ? await generate('ec', { namedCurve: ec.curve, privateKeyEncoding, publicKeyEncoding })
    : await generate('rsa', { modulusLength: kind as number, privateKeyEncoding, publicKeyEncoding })
  const info = new CertificationRequestInfo({
    version: 0,
    // UTF8String, as the certificate will carry it.
    subject: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: COMMON_NAME, value: new AttributeValue({ utf8String: clientId }) })])]),
    subjectPKInfo: AsnConvert.parse(publicKey, SubjectPublicKeyInfo),
    attributes: new Attributes(),
  })
  const signed = Buffer.from(AsnConvert.serialize(info))
  // ECDSA: DER signature, no parameters; RSA: PKCS#1 v1.5, NULL parameters (RFC 4055, RFC 5758).
  const signature = sign(ec ? ec.hash : 'sha256', signed, createPrivateKey(privateKey))
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: ec ? new AlgorithmIdentifier({ algorithm: ec.oid }) : new AlgorithmIdentifier({ algorithm: SHA256_WITH_RSA, parameters: null }),
    signature: toArrayBuffer(signature),
  })
  const der = Buffer.from(AsnConvert.serialize(csr))
  return { keyPem: privateKey, csrPem: pem('CERTIFICATE REQUEST', der) }
}

function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`
}
