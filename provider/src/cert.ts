/**
 * The plugin's one-time TLS identity for go-plugin AutoMTLS: a self-signed ECDSA P-256 CA certificate for
 * "localhost" with serverAuth and clientAuth, the shape go-plugin's own generateCert produces.
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export interface PluginCert {
  /** PEM certificate and PKCS#8 key for the TLS server. */
  certPem: string;
  keyPem: string;
  /** The leaf's DER bytes, which the handshake line carries. */
  der: Buffer;
}

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export async function generatePluginCert(now = new Date()): Promise<PluginCert> {
  const crypto = webcrypto as unknown as Crypto;
  const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const flags = x509.KeyUsageFlags;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
      name: 'CN=localhost, O=tailplane',
      // Like go-plugin: valid from slightly in the past (clock skew) for a long time (the process is short-lived).
      notBefore: new Date(now.getTime() - 30_000),
      notAfter: new Date(now.getTime() + 30 * 365 * 24 * 3600_000),
      signingAlgorithm: alg,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(flags.digitalSignature | flags.keyEncipherment | flags.keyAgreement | flags.keyCertSign, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }]),
      ],
    },
    crypto,
  );
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  return { certPem: cert.toString('pem'), keyPem, der: Buffer.from(cert.rawData) };
}
