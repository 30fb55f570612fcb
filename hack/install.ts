// Installs kubevirt-ts's virt-api into the cluster KUBECONFIG points at: the
// CRDs, a CA and serving certificate (openssl), and the objects
// src/operator/components.ts renders. A stand-in until virt-operator does this.
//   node hack/install.ts [--registry registry:5000]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { virtApiObjects } from '../src/operator/components.ts';
import { userClusterRoles } from '../src/operator/rbac.ts';

const NAMESPACE = 'kubevirt';
const { values } = parseArgs({ options: { registry: { type: 'string', default: 'registry:5000' } } });
const repo = join(import.meta.dirname, '..');
const kubectl = (args: string[], input?: string) => execFileSync('kubectl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'inherit'] });

function servingCertificate(): { ca: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kvts-install-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const host = `virt-api.${NAMESPACE}.svc`;
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', '/CN=kubevirt.io@kubevirt-ts');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${host}`);
  writeFileSync(join(dir, 'ext'), `subjectAltName=DNS:${host},DNS:${host}.cluster.local,DNS:virt-api.${NAMESPACE}\nextendedKeyUsage=serverAuth\n`);
  openssl('x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'tls.crt', '-days', '1', '-extfile', 'ext');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const result = { ca: read('ca.crt'), cert: read('tls.crt'), key: read('tls.key') };
  rmSync(dir, { recursive: true, force: true });
  return result;
}

kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(repo, 'manifests', 'crds')]);
kubectl(['wait', '--for=condition=Established', 'crd', '-l', 'kubevirt.io', '--timeout=60s']);
const tls = servingCertificate();
// The devel tag moves with every build, so the node must not keep an old copy.
const objects = virtApiObjects({
  namespace: NAMESPACE, image: `${values.registry}/kubevirt-ts/virt-ts:devel`, imagePullPolicy: 'Always', caBundle: tls.ca, servingCert: tls,
});
kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...objects, ...userClusterRoles()] }));
for (const deployment of ['virt-api', 'virt-controller']) kubectl(['rollout', 'restart', `deployment/${deployment}`, '-n', NAMESPACE]);
for (const deployment of ['virt-api', 'virt-controller']) kubectl(['rollout', 'status', `deployment/${deployment}`, '-n', NAMESPACE, '--timeout=120s']);
console.error('virt-api and virt-controller installed');
