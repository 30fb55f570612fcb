// The kubevirt-ts PKI, as upstream's virt-operator keeps it: a 7-day CA and
// 24-hour leaf certificates, each renewed once only 20% of its lifetime is
// left. A renewed CA joins the CA bundle beside the old one until the old
// one expires, so components trusting the bundle never see a gap.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;

export const CA_LIFETIME_MS = 7 * 24 * 3600 * 1000;
export const LEAF_LIFETIME_MS = 24 * 3600 * 1000;
export const RENEW_WHEN_LEFT = 0.2;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyPair {
  cert: string;
  key: string;
}

export interface LeafSpec {
  /** The Secret that holds it (tls.crt, tls.key). */
  secret: string;
  commonName: string;
  dnsNames: string[];
  usage: 'server' | 'client' | 'both';
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return crypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']);
}

const serial = () =>
  Buffer.from(crypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');

export async function createCa(now: Date, lifetimeMs = CA_LIFETIME_MS): Promise<KeyPair> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=kubevirt.io@${Math.floor(now.getTime() / 1000)}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + lifetimeMs),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: `${cert.toString('pem').trim()}\n`, key: await exportKey(keys.privateKey) };
}

export async function createLeaf(ca: KeyPair, spec: LeafSpec, now: Date, lifetimeMs = LEAF_LIFETIME_MS): Promise<KeyPair> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const caCert = new x509.X509Certificate(ca.cert);
  const usages = {
    server: [x509.ExtendedKeyUsage.serverAuth],
    client: [x509.ExtendedKeyUsage.clientAuth],
    both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  }[spec.usage];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${spec.commonName}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(Math.min(now.getTime() + lifetimeMs, caCert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: await importKey(ca.key),
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      ...(spec.dnsNames.length
        ? [new x509.SubjectAlternativeNameExtension(spec.dnsNames.map((value) => ({ type: 'dns' as const, value })))]
        : []),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { cert: `${cert.toString('pem').trim()}\n`, key: await exportKey(keys.privateKey) };
}

/** When a certificate should be replaced: once 20% of its lifetime is left. */
export function renewalTime(pem: string): Date {
  const cert = new x509.X509Certificate(pem);
  const from = cert.notBefore.getTime();
  const to = cert.notAfter.getTime();
  return new Date(to - (to - from) * RENEW_WHEN_LEFT);
}

export function signedBy(leafPem: string, caPem: string): boolean {
  const leaf = new x509.X509Certificate(leafPem);
  const ca = new x509.X509Certificate(caPem);
  return (
    leaf.issuer === ca.subject &&
    leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId === ca.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
  );
}

export function notAfter(pem: string): Date {
  return new x509.X509Certificate(pem).notAfter;
}

export function commonName(pem: string): string {
  return /CN=([^,]+)/.exec(new x509.X509Certificate(pem).subject)?.[1] ?? '';
}

/** Splits a PEM bundle into its certificates. */
export function splitBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((c) => `${c.trimEnd()}\n`) ?? [];
}

export interface PkiState {
  ca?: KeyPair;
  /** The PEM bundle of trusted CAs as last written. */
  bundle?: string;
  leaves: Record<string, KeyPair | undefined>;
}

export interface PkiPlan {
  ca: KeyPair;
  bundle: string;
  /** Leaves to (re)write, by secret name. */
  write: Record<string, KeyPair>;
  caRenewed: boolean;
  /** The earliest moment anything needs renewing again. */
  nextCheck: Date;
}

/**
 * What to issue: a new CA when there is none or it is due, then every leaf
 * that is missing, due, or signed by another CA.
 */
export async function planPki(state: PkiState, leaves: LeafSpec[], now: Date): Promise<PkiPlan> {
  const caDue = !state.ca || renewalTime(state.ca.cert) <= now;
  const ca = caDue ? await createCa(now) : state.ca!;
  const kept = splitBundle(state.bundle ?? '').filter((c) => notAfter(c) > now && c.trim() !== ca.cert.trim());
  const bundle = [ca.cert, ...kept].join('');
  const write: Record<string, KeyPair> = {};
  let nextCheck = renewalTime(ca.cert);
  for (const spec of leaves) {
    const current = state.leaves[spec.secret];
    const valid =
      current && renewalTime(current.cert) > now && signedBy(current.cert, ca.cert) && commonName(current.cert) === spec.commonName;
    const leaf = valid ? current : await createLeaf(ca, spec, now);
    if (!valid) write[spec.secret] = leaf;
    const due = renewalTime(leaf.cert);
    if (due < nextCheck) nextCheck = due;
  }
  return { ca, bundle, write, caRenewed: caDue, nextCheck };
}
