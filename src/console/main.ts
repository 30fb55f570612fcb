// The web console: serves the page and forwards the browser's API requests and
// streams to kube-apiserver with the browser's own token. It runs with no
// Kubernetes credentials (its pod mounts no service account token), only the
// cluster's CA to check kube-apiserver. Its certificate is re-read when the
// mounted secret changes.
import { readFileSync, watchFile } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { ConsoleServer } from './server.ts';

const log = createLogger('virt-console');
const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: '8443' },
    'cert-dir': { type: 'string', default: '/etc/virt-console/certificates' },
    'kube-ca': { type: 'string', default: '/etc/virt-console/kube-ca/ca.crt' },
    'static-dir': { type: 'string', default: join(import.meta.dirname, '..', '..', 'console-web') },
  },
});
const host = process.env.KUBERNETES_SERVICE_HOST;
if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set: virt-console runs in a pod');
const certDir = flags['cert-dir'];
const server = new ConsoleServer({
  apiServer: `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}`,
  apiServerCa: () => readFileSync(flags['kube-ca']),
  servingCertificate: () => ({ cert: readFileSync(join(certDir, 'tls.crt')), key: readFileSync(join(certDir, 'tls.key')) }),
  staticDir: flags['static-dir'],
  log,
});
exitOnSignals(log, () => server.close());
await server.start(Number(flags.port));
watchFile(join(certDir, 'tls.crt'), { interval: 10_000 }, () => server.reloadServingCertificate());
