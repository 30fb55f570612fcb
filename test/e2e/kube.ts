// Helpers for tests against the local cluster: kubectl, and waiting with a deadline.
import { execFileSync, spawnSync } from 'node:child_process';

export const KUBECONFIG = process.env.KUBECONFIG ?? '/var/lib/kubevirt-ts-cluster/admin.kubeconfig';

export function kubectl(args: string[], input?: string): string {
  return execFileSync('kubectl', args, {
    encoding: 'utf8',
    input,
    env: { ...process.env, KUBECONFIG },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** kubectl that may fail: returns its exit status and both streams. */
export function kubectlResult(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('kubectl', args, { encoding: 'utf8', input, env: { ...process.env, KUBECONFIG } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * An HTTP GET made from inside a pod, with the image's own Node runtime: the body (trimmed), or
 * undefined without a 2xx answer. Any other answer is not the cluster's: an address nothing in
 * the cluster serves yet (a Service kube-proxy has not programmed) leaves the node by its default
 * route, and this machine's gateway answers every address with an empty 404.
 */
export function getFromPod(namespace: string, pod: string, url: string): string | undefined {
  const script =
    'fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then(async (r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); process.stdout.write(await r.text()); }).catch((e) => { console.error(String(e)); process.exit(1); })';
  const r = kubectlResult(['exec', '-n', namespace, pod, '--', 'node', '-e', script, url]);
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export function apply(manifest: unknown): void {
  kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
}

export async function eventually<T>(
  what: string,
  seconds: number,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message.split('\n').slice(0, 3).join(' ')}` : '';
      throw new Error(`timed out after ${seconds}s waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Deletes a test namespace. VMIs and migrations carry finalizers that
 * virt-controller removes; where no controller runs, the test removes them so
 * the namespace can go.
 */
export function deleteNamespace(ns: string, wait = false): void {
  const names = kubectlResult(['get', 'vmi,vmim', '-n', ns, '-o', 'name']).stdout.split('\n').filter(Boolean);
  for (const name of names) {
    kubectlResult(['patch', name, '-n', ns, '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
  }
  kubectlResult(['delete', 'namespace', ns, `--wait=${wait}`, '--timeout=60s']);
}

/**
 * The e2e image server (test/e2e/servers/image-server.ts, range reads) as a pod and a Service in
 * namespace, serving the image's own /srv/images, or hostDir from this machine: its base URL, by the
 * Service's address, which the node reaches too (the benchmarks read it from the host).
 */
export function startImageServer(namespace: string, hostDir?: string): string {
  const root = hostDir ? '/bench' : '/srv/images';
  apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'image-server', namespace, labels: { app: 'image-server' } },
    spec: {
      containers: [
        {
          name: 'server',
          image: 'registry:5000/kubevirt-ts/e2e-servers:devel',
          command: ['node', '/app/test/servers/image-server.ts', root],
          ports: [{ containerPort: 8080 }],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
          ...(hostDir ? { volumeMounts: [{ name: 'files', mountPath: root, readOnly: true }] } : {}),
        },
      ],
      ...(hostDir ? { volumes: [{ name: 'files', hostPath: { path: hostDir, type: 'Directory' } }] } : {}),
    },
  });
  apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'image-server', namespace },
    spec: { selector: { app: 'image-server' }, ports: [{ port: 8080, targetPort: 8080 }] },
  });
  kubectl(['wait', '--for=condition=Ready', 'pod/image-server', '-n', namespace, '--timeout=120s']);
  return `http://${kubectl(['get', 'service', 'image-server', '-n', namespace, '-o', 'jsonpath={.spec.clusterIP}'])}:8080`;
}

/** Waits until virt-handler's pods (new ones, after a test deleted the old), one per node, are ready. */
export function virtHandlerReady(seconds = 120): Promise<true> {
  const readiness = [
    'get',
    'pods',
    '-n',
    'kubevirt',
    '-l',
    'kubevirt.io=virt-handler',
    '-o',
    'jsonpath={.items[*].status.containerStatuses[0].ready}',
  ];
  return eventually('a ready virt-handler', seconds, () =>
    kubectl(readiness)
      .split(' ')
      .every((ready) => ready === 'true'),
  );
}

/**
 * The serial console log of a VMI's current launcher pod (not a pod that only binds its claims,
 * which has no guest); empty while there is none.
 */
export function vmiConsoleLog(namespace: string, vmi: string): string {
  const uid = kubectlResult(['get', 'vmi', vmi, '-n', namespace, '-o', 'jsonpath={.metadata.uid}']).stdout;
  type Pods = { items: { metadata: { name: string; labels?: Record<string, string> }; spec: { containers: { name: string }[] } }[] };
  const pods = (JSON.parse(kubectl(['get', 'pods', '-n', namespace, '-o', 'json'])) as Pods).items.filter(
    (p) => p.metadata.labels?.['kubevirt.io/created-by'] === uid && p.spec.containers.some((c) => c.name === 'guest-console-log'),
  );
  return pods.length ? kubectlResult(['logs', '-n', namespace, pods[0].metadata.name, '-c', 'guest-console-log']).stdout : '';
}

/**
 * What a failed storage step needs to be understood after the cluster is gone: the namespace's
 * claims, pods and events, and the recent log of the component that drives them.
 */
export function storageDiagnostics(namespace: string, component = 'cdi-controller'): string {
  const run = (args: string[]) => {
    const result = kubectlResult(args);
    return `$ kubectl ${args.join(' ')}\n${result.stdout}${result.stderr}`;
  };
  return [
    run(['describe', 'pvc', '-n', namespace]),
    run(['get', 'pods', '-n', namespace, '-o', 'wide']),
    run(['describe', 'pods', '-n', namespace]),
    run(['get', 'events', '-n', namespace, '--sort-by=.lastTimestamp']),
    run(['get', 'pods', '-n', 'kubevirt', '-o', 'wide']),
    run(['logs', '-n', 'kubevirt', '-l', `kubevirt.io=${component}`, '--tail=200', '--prefix']),
    run(['logs', '-n', 'local-path-storage', '-l', 'app=local-path-provisioner', '--tail=50']),
  ].join('\n');
}
