// TLS for the hops into fill pods (upload proxy -> upload server, a clone's
// importer -> the clone source): cdi-controller holds a CA, issues each fill
// pod a serving certificate for a name derived from the pod, and the callers
// trust only that CA and check that name, whatever address they dial (a pod
// IP). The pods' bearer token stays as a second check. Wiring these into the
// pods and callers is still to come (see issue 16); this is the issuance.
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { createLeaf, type KeyPair } from '../lib/pki.ts';

/** A fill pod's certificate lives a week: longer than any fill, shorter than the CA. */
export const FILL_POD_CERT_LIFETIME_MS = 7 * 24 * 3600 * 1000;

/** The name a fill pod's certificate is issued for, and callers check: not resolvable, only compared. */
export const fillPodServerName = (namespace: string, podName: string) => `${podName}.${namespace}.fill-pod.cdi.kubevirt.io`;

/** The serving certificate (PEM cert and key) for one fill pod, signed by cdi-controller's CA. */
export function issueFillPodCert(ca: KeyPair, namespace: string, podName: string, now: Date): Promise<KeyPair> {
  const name = fillPodServerName(namespace, podName);
  return createLeaf(ca, { secret: '', commonName: name, dnsNames: [name], usage: 'server' }, now, FILL_POD_CERT_LIFETIME_MS);
}

/** TLS client options that accept only the given fill pod's certificate from that CA, dialled by IP. */
export function fillPodClientTls(caCert: string, namespace: string, podName: string) {
  const name = fillPodServerName(namespace, podName);
  return {
    ca: caCert,
    servername: name,
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert),
  };
}
