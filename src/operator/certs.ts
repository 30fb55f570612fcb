// The kubevirt-ts PKI, as upstream's virt-operator keeps it: a 7-day CA and
// 24-hour leaf certificates, each renewed once only 20% of its lifetime is
// left. A renewed CA joins the CA bundle beside the old one until the old
// one expires, so components trusting the bundle never see a gap.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { FILL_POD_CA_LIFETIME_MS, FILL_POD_CA_RENEW_BEFORE_MS } from '../contract/cdi.ts';
import { createCa, createLeaf, type KeyPair, type LeafSpec, RENEW_WHEN_LEFT } from '../lib/pki.ts';

export { CA_LIFETIME_MS, createCa, createLeaf, type KeyPair, LEAF_LIFETIME_MS, type LeafSpec, RENEW_WHEN_LEFT } from '../lib/pki.ts';

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

export interface FillPodCaPlan {
  ca: KeyPair;
  /** The CAs cdi-controller's callers trust: the current one first, then earlier ones not yet expired. */
  bundle: string;
  /** Whether anything changed (a new CA, or an expired one left the bundle): the Secret is to be written. */
  changed: boolean;
  caRenewed: boolean;
  nextCheck: Date;
}

/**
 * The fill-pod CA (cdi-controller signs its fill pods' certificates with it):
 * made when missing, replaced once less than FILL_POD_CA_RENEW_BEFORE_MS of
 * it is left, so every certificate it signs gets its full lifetime; the
 * replaced one stays in the bundle until it expires.
 */
export async function planFillPodCa(state: { ca?: KeyPair; bundle?: string }, now: Date): Promise<FillPodCaPlan> {
  const renewAt = (pem: string) => new Date(notAfter(pem).getTime() - FILL_POD_CA_RENEW_BEFORE_MS);
  const caDue = !state.ca || renewAt(state.ca.cert) <= now;
  const ca = caDue ? await createCa(now, FILL_POD_CA_LIFETIME_MS) : state.ca!;
  const kept = splitBundle(state.bundle ?? '').filter((c) => notAfter(c) > now && c.trim() !== ca.cert.trim());
  const bundle = [ca.cert, ...kept].join('');
  // The next look: the CA's renewal, or the moment the oldest one kept expires and leaves the bundle.
  const moments = [renewAt(ca.cert), ...kept.map(notAfter)].map((d) => d.getTime());
  return { ca, bundle, changed: caDue || bundle !== state.bundle, caRenewed: caDue, nextCheck: new Date(Math.min(...moments)) };
}
