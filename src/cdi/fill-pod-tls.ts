// TLS for the hops into fill pods (upload proxy -> upload server,
// cdi-controller -> a fill pod's progress, a clone's importer -> the clone
// source): cdi-controller holds the fill-pod CA (virt-operator's Secret,
// mounted), issues each fill pod a serving certificate for a name derived from
// the pod and hands it to the pod in its environment; the callers trust only
// the CA bundle and check that name, whatever address they dial (a pod IP).
// The pods' bearer token stays as a second check.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { FILL_POD_CA_FILES, FILL_POD_CERT_LIFETIME_MS, FILL_POD_TLS_ENV, fillPodServerName } from '../contract/cdi.ts';
import { createLeaf, type KeyPair } from '../lib/pki.ts';

export { FILL_POD_CERT_LIFETIME_MS, fillPodServerName } from '../contract/cdi.ts';
export { fillPodClientTls } from './fill-pod-client.ts';

/** The serving certificate (PEM cert and key) for one fill pod, signed by cdi-controller's CA. */
export function issueFillPodCert(ca: KeyPair, namespace: string, podName: string, now: Date): Promise<KeyPair> {
  const name = fillPodServerName(namespace, podName);
  return createLeaf(ca, { secret: '', commonName: name, dnsNames: [name], usage: 'server' }, now, FILL_POD_CERT_LIFETIME_MS);
}

/** The fill-pod CA as cdi-controller holds it: the pair that signs, and the bundle callers trust. */
export interface FillPodCaMaterial {
  signer: KeyPair;
  bundle: string;
}

/** What the controllers need: a certificate for a pod, and the bundle to check pods with. */
export interface FillPodTls {
  issue(namespace: string, podName: string): Promise<KeyPair>;
  /** The CA bundle: the current CA and the earlier ones not yet expired. */
  bundle(): string;
}

/** How often the mounted Secret is read again: the kubelet updates it in place once the operator rotates the CA. */
const REREAD_MS = 60_000;

/** The fill-pod CA read from `read` (the mounted Secret), again at most every minute. */
export function fillPodTls(read: () => FillPodCaMaterial, now: () => Date = () => new Date()): FillPodTls {
  let held: { material: FillPodCaMaterial; at: number } | undefined;
  const current = () => {
    const at = now().getTime();
    if (!held || at - held.at >= REREAD_MS) held = { material: read(), at };
    return held.material;
  };
  return {
    issue: (namespace, podName) => issueFillPodCert(current().signer, namespace, podName, now()),
    bundle: () => current().bundle,
  };
}

/** Reads the fill-pod CA Secret's files from the directory it is mounted at. */
export function readFillPodCa(dir: string): FillPodCaMaterial {
  const file = (name: string) => readFileSync(join(dir, name), 'utf8');
  const signer = { cert: file(FILL_POD_CA_FILES.cert), key: file(FILL_POD_CA_FILES.key) };
  let bundle: string;
  try {
    bundle = file(FILL_POD_CA_FILES.bundle);
  } catch {
    bundle = signer.cert;
  }
  return { signer, bundle };
}

/**
 * The pod with its TLS material added to its first container's environment:
 * its serving certificate and key, and the CA bundle for a pod that calls
 * other fill pods. Pure; the material is the executor's to make.
 */
export function withFillPodTls(pod: V1Pod, material: { cert: string; key: string; caBundle?: string }): V1Pod {
  const [first, ...rest] = pod.spec!.containers;
  const env = [
    ...(first.env ?? []).filter((e) => !Object.values(FILL_POD_TLS_ENV).includes(e.name as never)),
    { name: FILL_POD_TLS_ENV.cert, value: material.cert },
    { name: FILL_POD_TLS_ENV.key, value: material.key },
    ...(material.caBundle ? [{ name: FILL_POD_TLS_ENV.ca, value: material.caBundle }] : []),
  ];
  return { ...pod, spec: { ...pod.spec!, containers: [{ ...first, env }, ...rest] } };
}
