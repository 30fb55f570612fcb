// virt-api: fills its informers' caches (the cluster configuration, instance
// types and preferences) and serves the admission webhooks and the
// subresource API over TLS. Its certificate is re-read when the mounted secret
// changes, so rotation needs no restart.
import { existsSync, readFileSync, watchFile } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { VersionApi } from '@kubernetes/client-node';
import { UPLOAD_TOKEN_KEY_FILE } from '../contract/upload-token.ts';
import type { VirtualMachineInstancetype, VirtualMachinePreference } from '../api/types.ts';
import { clusterConfigInformer } from '../lib/cluster-config-watch.ts';
import { customInformer, loadKubeConfig, startInformers, withoutLastApplied, type Typed } from '../lib/kube.ts';
import { healthEndpoints } from '../lib/health.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { VirtApiKubeApi } from './kube-api.ts';
import { componentMetrics } from '../lib/metrics.ts';
import { VirtApiServer } from './server.ts';
import { takeProcessName } from '../lib/process-name.ts';

takeProcessName();
const log = createLogger('virt-api');
exitOnSignals(log);
// Flags, not environment: Kubernetes puts VIRT_API_* variables of its own (the Service's) into the pod.
const { values: flags } = parseArgs({
  options: { port: { type: 'string', default: '8443' }, 'cert-dir': { type: 'string', default: '/etc/virt-api/certificates' } },
});
const CERT_DIR = flags['cert-dir'];
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
const UPLOAD_TOKEN_DIR = '/etc/virt-api/upload-token';

// Made before any request is sent: the API client's requests are counted from the first.
const metrics = componentMetrics('virt-api');
const kc = loadKubeConfig();
const clusterConfig = clusterConfigInformer(kc, NAMESPACE);
// Read only (never written back), so kubectl's last-applied copy goes too.
const instancetypeInformer = <T>(plural: string) =>
  customInformer<Typed<T>>(kc, 'instancetype.kubevirt.io', 'v1beta1', plural, withoutLastApplied);
const instancetypes = instancetypeInformer<VirtualMachineInstancetype>('virtualmachineinstancetypes');
const clusterInstancetypes = instancetypeInformer<VirtualMachineInstancetype>('virtualmachineclusterinstancetypes');
const preferences = instancetypeInformer<VirtualMachinePreference>('virtualmachinepreferences');
const clusterPreferences = instancetypeInformer<VirtualMachinePreference>('virtualmachineclusterpreferences');
await startInformers(log, clusterConfig.informer, instancetypes, clusterInstancetypes, preferences, clusterPreferences);

const server = new VirtApiServer({
  api: new VirtApiKubeApi(kc, NAMESPACE),
  informers: { instancetypes, clusterInstancetypes, preferences, clusterPreferences },
  config: clusterConfig.current,
  namespace: NAMESPACE,
  servingCertificate: () => ({ cert: readFileSync(join(CERT_DIR, 'tls.crt')), key: readFileSync(join(CERT_DIR, 'tls.key')) }),
  handlerClientTls: () => ({
    cert: readFileSync('/etc/virt-api/handler-client/tls.crt'),
    key: readFileSync('/etc/virt-api/handler-client/tls.key'),
    ca: readFileSync('/etc/virt-api/ca/ca-bundle'),
  }),
  now: () => new Date(),
  newUUID: () => crypto.randomUUID(),
  uploadTokenKey: () => {
    const file = join(UPLOAD_TOKEN_DIR, UPLOAD_TOKEN_KEY_FILE);
    return existsSync(file) ? readFileSync(file) : undefined;
  },
  log,
  metrics: metrics.registry,
  health: healthEndpoints({
    apiserverVersion: () => kc.makeApiClient(VersionApi).getCode(),
    configResourceVersion: clusterConfig.resourceVersion,
  }),
});
await server.start(Number(flags.port));
metrics.setReady(true);
// A rotated certificate is picked up from the mounted secret without a restart.
watchFile(join(CERT_DIR, 'tls.crt'), { interval: 10_000 }, () => server.reloadServingCertificate());
