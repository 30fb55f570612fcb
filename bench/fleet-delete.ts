// A fleet deleted at once, on the local cluster with kubevirt-ts installed (npm start): N running
// test guests (default 30), then every VMI deleted in one request (`kubectl delete vmi --all`),
// with virt-handler's pod deleted a moment later (`--restart-after`, seconds) so it restarts in
// the middle of the shutdowns. Reports the time until no VMI is left and until no launcher pod is
// left (target: VMIs ≤ 30 s), each VMI's last phase before it went (every one must end Succeeded
// or Failed: none lost, none stuck), and the QEMU processes left on the node (must be 0).
//   KUBECONFIG=... node bench/fleet-delete.ts [--vmis 30] [--restart-after 2]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { benchKubeConfig, createVmis, deleteNamespace, followWatch, testGuestVmi } from './cluster.ts';

const { values } = parseArgs({
  options: { vmis: { type: 'string', default: '30' }, 'restart-after': { type: 'string', default: '2' } },
});
const VMIS = Number(values.vmis);
const NS = 'kvts-bench-fleet';
const TARGET_S = 30;

const kc = benchKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const vmiApi = { group: 'kubevirt.io', version: 'v1', namespace: NS, plural: 'virtualmachineinstances' };
/** QEMU processes on this node that run a guest of the namespace (the launcher names each guest namespace_name). */
const qemusLeft = () =>
  execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes('qemu-system') && line.includes(`guest=${NS}_`)).length;

await deleteNamespace(core, NS);
await core.createNamespace({ body: { metadata: { name: NS } } });
/** Each VMI's phase as last seen, kept after it is deleted. */
const lastPhase = new Map<string, string>();
const present = new Set<string>();
const watching = await followWatch(
  kc,
  `/apis/kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances`,
  (type, object: { metadata: { name: string }; status?: { phase?: string } }) => {
    lastPhase.set(object.metadata.name, object.status?.phase ?? '');
    if (type === 'DELETED') present.delete(object.metadata.name);
    else present.add(object.metadata.name);
  },
);
try {
  console.error(`starting ${VMIS} VMIs`);
  await createVmis(
    custom,
    NS,
    Array.from({ length: VMIS }, (_, i) => testGuestVmi(`fleet-${i}`, NS)),
  );
  const deadline = Date.now() + 10 * 60_000;
  while ([...lastPhase.values()].filter((p) => p === 'Running').length < VMIS) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the VMIs to run');
    await sleep(500);
  }
  console.error(`${VMIS} Running; deleting them all, and virt-handler's pod after ${values['restart-after']} s`);
  const started = performance.now();
  await custom.deleteCollectionNamespacedCustomObject(vmiApi);
  await sleep(Number(values['restart-after']) * 1000);
  await core.deleteCollectionNamespacedPod({ namespace: 'kubevirt', labelSelector: 'kubevirt.io=virt-handler' });
  let vmisGoneS = Number.NaN;
  let podsGoneS = Number.NaN;
  while (Number.isNaN(podsGoneS) || Number.isNaN(vmisGoneS)) {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed > 300) break;
    if (Number.isNaN(vmisGoneS) && present.size === 0) vmisGoneS = elapsed;
    if (Number.isNaN(podsGoneS) && (await core.listNamespacedPod({ namespace: NS })).items.length === 0) podsGoneS = elapsed;
    await sleep(100);
  }
  const endings = new Map<string, number>();
  for (const phase of lastPhase.values()) endings.set(phase || 'none', (endings.get(phase || 'none') ?? 0) + 1);
  const stuck = [...present];
  console.log(
    JSON.stringify(
      {
        vmis: VMIS,
        virtHandlerRestartedAfter: `${values['restart-after']} s`,
        vmisGone: Number.isNaN(vmisGoneS)
          ? `not within 300 s (${stuck.length} left: ${stuck.slice(0, 5).join(', ')})`
          : `${vmisGoneS.toFixed(1)} s`,
        target: `≤ ${TARGET_S} s`,
        ratio: (vmisGoneS / TARGET_S).toFixed(2),
        launcherPodsGone: Number.isNaN(podsGoneS) ? 'not within 300 s' : `${podsGoneS.toFixed(1)} s`,
        lastPhases: Object.fromEntries(endings),
        allEndedSucceededOrFailed: [...lastPhase.values()].every((p) => p === 'Succeeded' || p === 'Failed'),
        qemusLeftOnNode: qemusLeft(),
        upstream: 'no published figure',
      },
      null,
      2,
    ),
  );
} finally {
  watching.stop();
  await deleteNamespace(core, NS);
}
