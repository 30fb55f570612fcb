// Installs kubevirt-ts into the cluster KUBECONFIG points at, the way a user
// would: kubevirt-operator.yaml, then the KubeVirt CR, then waits for the CR
// to be Available. The operator is pinned to the digests just pushed, so a
// rebuilt image always rolls out. Where KVM is not usable, the CR asks for
// software emulation.
//   node hack/install.ts [--registry registry:5000]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { kvmUsable } from '../src/lib/kvm.ts';
import { operatorManifest } from '../src/operator/install.ts';

const NAMESPACE = 'kubevirt';
const { values } = parseArgs({
  options: { registry: { type: 'string', default: 'registry:5000' }, timeout: { type: 'string', default: '300s' } },
});
const repo = join(import.meta.dirname, '..');
const cache = process.env.KVTS_CACHE ?? join(process.env.HOME ?? '/root', '.cache', 'kubevirt-ts');
const kubectl = (args: string[], input?: string) =>
  execFileSync('kubectl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'inherit'] });

function pinned(repository: string): string {
  const ref = `${values.registry}/${repository}`;
  const digest = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}:devel`], { encoding: 'utf8' }))
    .Digest as string;
  return `${ref}@${digest}`;
}

const image = pinned('kubevirt-ts/virt-ts');
const launcherImage = pinned('kubevirt-ts/virt-launcher');
const operator = operatorManifest({ namespace: NAMESPACE, image, launcherImage, imagePullPolicy: 'IfNotPresent' });
kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: operator }));
kubectl(['wait', '--for=condition=Established', 'crd/kubevirts.kubevirt.io', '--timeout=60s']);

const cr = parse(readFileSync(join(repo, 'manifests', 'kubevirt-cr.yaml'), 'utf8'));
if (!(await kvmUsable(cache))) {
  console.error('KVM is not usable on this node: the KubeVirt CR sets developerConfiguration.useEmulation');
  cr.spec.configuration.developerConfiguration.useEmulation = true;
}
kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(cr));
kubectl(['rollout', 'status', 'deployment/virt-operator', '-n', NAMESPACE, '--timeout=120s']);
const started = Date.now();
// Available for these images, not for what an earlier install left running.
const version = image.split(/[@:]/).pop();
kubectl([
  'wait',
  'kubevirt/kubevirt',
  '-n',
  NAMESPACE,
  `--for=jsonpath={.status.observedKubeVirtVersion}=${version}`,
  `--timeout=${values.timeout}`,
]);
kubectl(['wait', 'kubevirt/kubevirt', '-n', NAMESPACE, '--for=condition=Available', `--timeout=${values.timeout}`]);
// A new launcher image alone changes no version: wait for the operator to have rolled it out too.
kubectl([
  'wait',
  'daemonset/virt-handler',
  '-n',
  NAMESPACE,
  `--for=jsonpath={.spec.template.spec.containers[0].image}=${launcherImage}`,
  `--timeout=${values.timeout}`,
]);
for (const workload of ['deployment/virt-api', 'deployment/virt-controller', 'daemonset/virt-handler', 'deployment/virt-console']) {
  kubectl(['rollout', 'status', workload, '-n', NAMESPACE, `--timeout=${values.timeout}`]);
}
console.error(`kubevirt-ts installed: KubeVirt CR Available after ${((Date.now() - started) / 1000).toFixed(0)} s`);
const consoleAddress = kubectl(['get', 'service', 'virt-console', '-n', NAMESPACE, '-o', 'jsonpath={.spec.clusterIP}']);
console.error(
  `web console: https://${consoleAddress}/ from this machine (elsewhere: kubectl port-forward -n ${NAMESPACE} svc/virt-console 8443:443); log in with a bearer token, e.g. kubectl create token SERVICE-ACCOUNT -n NAMESPACE`,
);
