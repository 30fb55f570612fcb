// virt-api: serves the admission webhooks over TLS. Its certificate is re-read
// when the mounted secret changes, so rotation needs no restart; the cluster
// configuration comes from the KubeVirt CR, watched.
import { createServer } from 'node:https';
import { readFileSync, watchFile } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { VirtualMachineInstancetype } from '../api/types.ts';
import { createLogger } from '../lib/log.ts';
import { customInformer, loadKubeConfig, startInformers } from '../lib/kube.ts';
import { clusterConfigInformer } from '../lib/cluster-config-watch.ts';
import { review, type AdmissionReview } from './admission.ts';

const log = createLogger('virt-api');
// Flags, not environment: Kubernetes puts VIRT_API_* variables of its own (the Service's) into the pod.
const { values: flags } = parseArgs({ options: { port: { type: 'string', default: '8443' }, 'cert-dir': { type: 'string', default: '/etc/virt-api/certificates' } } });
const CERT_DIR = flags['cert-dir'];
const PORT = Number(flags.port);
const NAMESPACE = process.env.KUBEVIRT_NAMESPACE ?? 'kubevirt';
/** The service accounts whose writes to VMI status and spec kubevirt-ts trusts. */
const KUBEVIRT_SERVICE_ACCOUNTS = new Set(
  ['kubevirt-apiserver', 'kubevirt-controller', 'kubevirt-handler', 'kubevirt-operator'].map((sa) => `system:serviceaccount:${NAMESPACE}:${sa}`),
);

const kc = loadKubeConfig();
type Typed<T> = T & KubernetesObject;
const clusterConfig = clusterConfigInformer(kc, NAMESPACE);
const instancetypes = customInformer<Typed<VirtualMachineInstancetype>>(kc, 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachineinstancetypes');
const clusterInstancetypes = customInformer<Typed<VirtualMachineInstancetype>>(kc, 'instancetype.kubevirt.io', 'v1beta1', 'virtualmachineclusterinstancetypes');
await startInformers(log, clusterConfig.informer, instancetypes, clusterInstancetypes);

const tls = () => ({ cert: readFileSync(join(CERT_DIR, 'tls.crt')), key: readFileSync(join(CERT_DIR, 'tls.key')) });
const server = createServer(tls(), (req, res) => {
  if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/readyz')) {
    res.writeHead(200).end('ok');
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdmissionReview;
      const answer = review(req.url?.split('?')[0] ?? '', body, {
        config: clusterConfig.current,
        kubevirtServiceAccounts: KUBEVIRT_SERVICE_ACCOUNTS,
        newUUID: () => crypto.randomUUID(),
        now: () => new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        findInstancetype: (namespace, kind, name) =>
          (kind === 'VirtualMachineClusterInstancetype' || kind === 'virtualmachineclusterinstancetype'
            ? clusterInstancetypes.get(name)
            : instancetypes.get(name, namespace))?.spec,
      });
      if (answer.response && !answer.response.allowed) {
        log.info('admission rejected', { path: req.url, kind: body.request?.kind?.kind, name: (body.request?.object as KubernetesObject | undefined)?.metadata?.name, causes: answer.response.status?.details?.causes?.length });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    } catch (error) {
      log.error('bad admission request', { path: req.url, error: (error as Error).message });
      res.writeHead(400).end((error as Error).message);
    }
  });
});
// A rotated certificate is picked up from the mounted secret without a restart.
watchFile(join(CERT_DIR, 'tls.crt'), { interval: 10_000 }, () => {
  server.setSecureContext(tls());
  log.info('serving certificate reloaded');
});
server.listen(PORT, () => log.info('serving admission webhooks', { port: PORT }));
