// virt-api: serves the admission webhooks over TLS. Its certificate is re-read
// when the mounted secret changes, so rotation needs no restart; the cluster
// configuration comes from the KubeVirt CR, watched.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { readFileSync, watchFile } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineInstancetype } from '../api/types.ts';
import { createLogger, exitOnSignals } from '../lib/log.ts';
import { apiErrorMessage, customInformer, loadKubeConfig, startInformers } from '../lib/kube.ts';
import { checkVmiAction, conflict, planRestart, planStart, planStop, type LifecycleError, type VmiAction } from './lifecycle.ts';
import { callHandler, handlerAddress } from './handler-client.ts';
import { actionPath, guestInfoPath } from '../handler/server.ts';
import { checkGuestInfo, guestInfoAnswer, type GuestInfoKind } from './guestinfo.ts';
import { clusterConfigInformer } from '../lib/cluster-config-watch.ts';
import { review, type AdmissionReview } from './admission.ts';
import { apiGroup, apiResourceList, authenticateProxy, requestHeaderConfig, statusError, SUBRESOURCE_GROUP, SUBRESOURCE_VERSION, type RequestHeaderConfig } from './aggregation.ts';

const log = createLogger('virt-api');
exitOnSignals(log);
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

// The front proxy's CA and names: aggregated requests are trusted only from a certificate it signed with an allowed CN.
let requestHeader: RequestHeaderConfig | undefined;
async function loadRequestHeader() {
  try {
    const map = await core.readNamespacedConfigMap({ name: 'extension-apiserver-authentication', namespace: 'kube-system' });
    requestHeader = requestHeaderConfig(map.data ?? {});
  } catch (error) {
    log.warning('cannot read the requestheader configuration; aggregated requests are refused', { error: (error as Error).message.split('\n')[0] });
  }
}
const core = kc.makeApiClient(CoreV1Api);
await loadRequestHeader();

const tls = () => ({
  cert: readFileSync(join(CERT_DIR, 'tls.crt')),
  key: readFileSync(join(CERT_DIR, 'tls.key')),
  // Client certificates are asked for but checked per request: the webhooks are called without one.
  requestCert: true,
  rejectUnauthorized: false,
  ...(requestHeader ? { ca: requestHeader.clientCA } : {}),
});
const json = (res: ServerResponse, code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));

function serveAggregated(req: IncomingMessage, res: ServerResponse) {
  const socket = req.socket as TLSSocket;
  const auth = authenticateProxy({ verified: socket.authorized, commonName: socket.getPeerCertificate()?.subject?.CN as string | undefined }, req.headers, requestHeader);
  if ('error' in auth) {
    log.warning('aggregated request refused', { path: req.url, reason: auth.error });
    json(res, 401, statusError(401, 'Unauthorized', auth.error));
    return;
  }
  const path = (req.url ?? '').split('?')[0].replace(/\/$/, '');
  if (req.method === 'GET' && path === `/apis/${SUBRESOURCE_GROUP}`) return json(res, 200, apiGroup());
  if (req.method === 'GET' && path === `/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}`) return json(res, 200, apiResourceList());
  const action = new RegExp(`^/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}/namespaces/([^/]+)/virtualmachines/([^/]+)/(start|stop|restart)$`).exec(path);
  if (action && req.method === 'PUT') {
    void readBody(req).then((text) => vmLifecycle(action[1], action[2], action[3] as 'start' | 'stop' | 'restart', optionsOf(text), auth.user.name)).then(
      (answer) => (answer ? json(res, answer.code, statusError(answer.code, answer.reason, answer.message)) : res.writeHead(202).end()),
      (error) => json(res, 500, statusError(500, 'InternalError', apiErrorMessage(error))),
    );
    return;
  }
  const vmiAction = new RegExp(`^/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}/namespaces/([^/]+)/virtualmachineinstances/([^/]+)/(pause|unpause|softreboot|reset)$`).exec(path);
  if (vmiAction && req.method === 'PUT') {
    void vmiLifecycle(vmiAction[1], vmiAction[2], vmiAction[3] as VmiAction, auth.user.name).then(
      (answer) => (answer ? json(res, answer.code, statusError(answer.code, answer.reason, answer.message)) : res.writeHead(200).end()),
      (error) => json(res, 500, statusError(500, 'InternalError', apiErrorMessage(error))),
    );
    return;
  }
  const info = new RegExp(`^/apis/${SUBRESOURCE_GROUP}/${SUBRESOURCE_VERSION}/namespaces/([^/]+)/virtualmachineinstances/([^/]+)/(guestosinfo|userlist|filesystemlist)$`).exec(path);
  if (info && req.method === 'GET') {
    void readGuestInfo(info[1], info[2], info[3] as GuestInfoKind).then(
      (answer) => ('code' in answer ? json(res, answer.code, statusError(answer.code, answer.reason, answer.message)) : json(res, 200, answer.body)),
      (error) => json(res, 500, statusError(500, 'InternalError', apiErrorMessage(error))),
    );
    return;
  }
  json(res, 404, statusError(404, 'NotFound', `${req.method} ${path} is not served by virt-api yet`));
}

async function getVmi(namespace: string, name: string): Promise<VirtualMachineInstance | undefined> {
  return (await custom.getNamespacedCustomObject({ group: 'kubevirt.io', version: 'v1', namespace, plural: 'virtualmachineinstances', name }).catch((error) => {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  })) as VirtualMachineInstance | undefined;
}

/** The guest agent's information about a VMI, from the virt-handler of its node. */
async function readGuestInfo(namespace: string, name: string, kind: GuestInfoKind): Promise<LifecycleError | { body: object }> {
  const vmi = await getVmi(namespace, name);
  if (!vmi) return { code: 404, reason: 'NotFound', message: `virtualmachineinstance.kubevirt.io "${name}" not found` };
  const refused = checkGuestInfo(vmi);
  if (refused) return refused;
  const answer = await callHandler('GET', await handlerAddress(core, NAMESPACE, vmi.status!.nodeName!), guestInfoPath(namespace, name), handlerTls());
  if (answer.status !== 200) return { code: 500, reason: 'InternalError', message: `reading the guest agent failed: ${answer.body}` };
  return { body: guestInfoAnswer(kind, JSON.parse(answer.body)) };
}

const handlerTls = () => ({
  cert: readFileSync('/etc/virt-api/handler-client/tls.crt'),
  key: readFileSync('/etc/virt-api/handler-client/tls.key'),
  ca: readFileSync('/etc/virt-api/ca/ca-bundle'),
});

/** pause, unpause, softreboot or reset a VMI through the virt-handler of its node. */
async function vmiLifecycle(namespace: string, name: string, action: VmiAction, user: string): Promise<LifecycleError | undefined> {
  const vmi = await getVmi(namespace, name);
  if (!vmi) return { code: 404, reason: 'NotFound', message: `virtualmachineinstance.kubevirt.io "${name}" not found` };
  const refused = checkVmiAction(vmi, action);
  if (refused) return refused;
  const address = await handlerAddress(core, NAMESPACE, vmi.status!.nodeName!);
  const answer = await callHandler('PUT', address, actionPath(namespace, name, action), handlerTls());
  if (answer.status !== 200) return { code: 500, reason: 'InternalError', message: `${action} failed: ${answer.body}` };
  log.object({ kind: 'VirtualMachineInstance', metadata: vmi.metadata }).info(`${action} done`, { user });
  return undefined;
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

/** A subresource's options; an empty or unreadable body means none, as upstream treats it. */
function optionsOf(text: string): Record<string, unknown> {
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return {};
  }
}

const custom = kc.makeApiClient(CustomObjectsApi);
const jsonPatchHeaders = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

/** start, stop or restart a VM; undefined when accepted, else the error to answer with. */
async function vmLifecycle(namespace: string, name: string, action: 'start' | 'stop' | 'restart', body: Record<string, unknown>, user: string): Promise<LifecycleError | undefined> {
  const get = (plural: string) => custom.getNamespacedCustomObject({ group: 'kubevirt.io', version: 'v1', namespace, plural, name }).catch((error) => {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  });
  const vm = (await get('virtualmachines')) as VirtualMachine | undefined;
  if (!vm) return { code: 404, reason: 'NotFound', message: `virtualmachine.kubevirt.io "${name}" not found` };
  const vmi = (await get('virtualmachineinstances')) as VirtualMachineInstance | undefined;
  const result = action === 'start'
    ? planStart(vm, vmi, { paused: body.paused === true })
    : action === 'stop'
      ? planStop(vm, vmi, { gracePeriod: typeof body.gracePeriod === 'number' ? body.gracePeriod : undefined })
      : planRestart(vm, vmi, { gracePeriodSeconds: typeof body.gracePeriodSeconds === 'number' ? body.gracePeriodSeconds : undefined });
  if ('error' in result) return result.error;
  const dryRun = Array.isArray(body.dryRun) && body.dryRun.length ? 'All' : undefined;
  const target = { group: 'kubevirt.io', version: 'v1', namespace, name, dryRun };
  try {
    if (result.plan.vmi) await custom.patchNamespacedCustomObject({ ...target, plural: 'virtualmachineinstances', body: result.plan.vmi }, jsonPatchHeaders);
    if (result.plan.vm) await custom.patchNamespacedCustomObject({ ...target, plural: 'virtualmachines', body: result.plan.vm }, jsonPatchHeaders);
    if (result.plan.vmStatus) await custom.patchNamespacedCustomObjectStatus({ ...target, plural: 'virtualmachines', body: result.plan.vmStatus }, jsonPatchHeaders);
  } catch (error) {
    // A failed test operation means someone else changed the VM meanwhile.
    if ((error as { code?: number }).code === 422) return conflict(name, apiErrorMessage(error)).error;
    throw error;
  }
  log.object({ kind: 'VirtualMachine', metadata: vm.metadata }).info(`${action} accepted`, { user, dryRun: dryRun !== undefined });
  return undefined;
}

const server = createServer(tls(), (req, res) => {
  if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/readyz')) {
    res.writeHead(200).end('ok');
    return;
  }
  if (req.url?.startsWith('/apis/')) return serveAggregated(req, res);
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  void readBody(req).then((text) => {
    try {
      const body = JSON.parse(text) as AdmissionReview;
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
// The front-proxy CA can change too (kube-apiserver restarted with another); re-read it now and then.
setInterval(() => void loadRequestHeader().then(() => server.setSecureContext(tls())), 60_000).unref();
server.listen(PORT, () => log.info('serving admission webhooks', { port: PORT }));
