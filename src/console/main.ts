// The web console: serves the page and forwards the browser's API requests and
// streams to kube-apiserver with the browser's own token. It runs with no
// Kubernetes credentials (its pod mounts no service account token), only the
// cluster's CA to check kube-apiserver. Its certificate is re-read when the
// mounted secret changes. VMI figures come from --prometheus-url when
// virt-operator found a Prometheus, else from virt-handler's /metrics, which
// it scrapes itself (pods found by DNS, their certificate checked against the
// kubevirt CA): no Kubernetes rights are needed for either.
import { readFileSync, watchFile } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { HandlerScraper, prometheusSource } from './metrics.ts';
import { ConsoleServer } from './server.ts';
import { takeProcessName } from '../lib/process-name.ts';

takeProcessName();
const log = createLogger('virt-console');
const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: '8443' },
    'cert-dir': { type: 'string', default: '/etc/virt-console/certificates' },
    'kube-ca': { type: 'string', default: '/etc/virt-console/kube-ca/ca.crt' },
    'static-dir': { type: 'string', default: join(import.meta.dirname, '..', '..', 'console-web') },
    /** Prometheus' HTTP API, e.g. http://prometheus.monitoring.svc:9090; empty: none, the console keeps its own history. */
    'prometheus-url': { type: 'string', default: '' },
    /** virt-handler's metrics port behind a headless Service, host:port, for the console's own history. */
    'handler-metrics': { type: 'string', default: 'virt-handler-metrics.kubevirt.svc:8443' },
    'kubevirt-ca': { type: 'string', default: '/etc/virt-console/kubevirt-ca/ca-bundle' },
  },
});
const host = process.env.KUBERNETES_SERVICE_HOST;
if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set: virt-console runs in a pod');
const certDir = flags['cert-dir'];
const prometheusUrl = flags['prometheus-url'];
const scraper = prometheusUrl
  ? undefined
  : new HandlerScraper({
      handlers: flags['handler-metrics'],
      ca: () => readFileSync(flags['kubevirt-ca']),
      serverName: 'virt-handler',
      log,
    });
log.info('VMI metrics source', prometheusUrl ? { prometheus: prometheusUrl } : { scraped: flags['handler-metrics'] });
const server = new ConsoleServer({
  apiServer: `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}`,
  apiServerCa: () => readFileSync(flags['kube-ca']),
  servingCertificate: () => ({ cert: readFileSync(join(certDir, 'tls.crt')), key: readFileSync(join(certDir, 'tls.key')) }),
  staticDir: flags['static-dir'],
  metrics: scraper ?? prometheusSource(prometheusUrl),
  log,
});
exitOnSignals(log, () => {
  scraper?.stop();
  return server.close();
});
await server.start(Number(flags.port));
scraper?.start();
watchFile(join(certDir, 'tls.crt'), { interval: 10_000 }, () => server.reloadServingCertificate());
