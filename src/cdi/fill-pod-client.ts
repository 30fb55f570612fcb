// The client side of TLS into fill pods: trust only the fill-pod CA bundle
// and check the name cdi-controller issued the pod's certificate for, whatever
// address is dialled (a pod IP). Apart from ./fill-pod-tls.ts so the fill pods
// (a clone's importer) load no X.509 library to use it.
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { fillPodServerName } from '../contract/cdi.ts';

export interface FillPodClientTls {
  ca: string;
  servername: string;
  rejectUnauthorized: true;
  checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
}

/** TLS client options that accept only a certificate for `serverName` from the CAs in `caBundle`. */
export function serverNameTls(caBundle: string, serverName: string): FillPodClientTls {
  return {
    ca: caBundle,
    // SNI is for host names: a pod's certificate name is one, never an IP.
    servername: serverName,
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(serverName, cert),
  };
}

/** TLS client options that accept only the given fill pod's certificate from that CA (bundle), dialled by IP. */
export function fillPodClientTls(caBundle: string, namespace: string, podName: string): FillPodClientTls {
  return serverNameTls(caBundle, fillPodServerName(namespace, podName));
}
