// virt-controller's API writes over client-node: what the VMI, VM and node
// controllers declare they need, and nothing more.
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1ControllerRevision, type V1Pod } from '@kubernetes/client-node';
import type {
  DataVolume,
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceMigration,
  VirtualMachineInstanceReplicaSet,
  VirtualMachinePool,
} from '../api/types.ts';
import { NON_ROOT_UID } from '../api/constants.ts';
import { CDI_GROUP, CDI_VERSION } from '../contract/cdi.ts';
import type { JsonPatchOperation, Typed } from '../lib/kube.ts';
import type { NodeControllerApi } from './node-controller.ts';
import type { PoolControllerApi } from './pool-controller.ts';
import type { ReplicaSetControllerApi } from './replicaset-controller.ts';
import type { NotSupportedKind } from '../contract/not-supported.ts';
import type { NotSupportedControllerApi } from './not-supported-controller.ts';
import type { VmControllerApi } from './vm-controller.ts';
import type { VmiControllerApi } from './vmi-controller.ts';
import type { MigrationControllerApi } from './migration-controller.ts';
import type { EvacuationControllerApi } from './evacuation-controller.ts';

const VMIS = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances' };
const MIGRATIONS = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstancemigrations' };
const REPLICASETS = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstancereplicasets' };
const POOLS = { group: 'pool.kubevirt.io', version: 'v1beta1', plural: 'virtualmachinepools' };
const VMS = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachines' };
const DATAVOLUMES = { group: CDI_GROUP, version: CDI_VERSION, plural: 'datavolumes' };
// client-node sends a patch body that is an array as a JSON patch.
const jsonPatch = (patch: JsonPatchOperation[]) => patch as unknown as object;

export class ControllerKubeApi
  implements
    VmiControllerApi,
    VmControllerApi,
    NodeControllerApi,
    ReplicaSetControllerApi,
    PoolControllerApi,
    NotSupportedControllerApi,
    MigrationControllerApi,
    EvacuationControllerApi
{
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #apps: AppsV1Api;

  constructor(kc: KubeConfig) {
    this.#apps = kc.makeApiClient(AppsV1Api);
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
  }

  createPod(namespace: string, pod: V1Pod): Promise<V1Pod> {
    return this.#core.createNamespacedPod({ namespace, body: pod });
  }

  /**
   * Whether kube-apiserver keeps a pod's image volumes: where Kubernetes' ImageVolume gate is off it
   * drops them from what it stores, so a pod created without persisting anything (dry run) tells.
   */
  async servesImageVolumes(namespace: string, image: string): Promise<boolean> {
    const pod = await this.#core.createNamespacedPod({
      namespace,
      dryRun: 'All',
      body: {
        metadata: { generateName: 'image-volume-probe-' },
        spec: {
          securityContext: { runAsNonRoot: true, runAsUser: NON_ROOT_UID, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'probe',
              image,
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'probe', mountPath: '/probe', readOnly: true }],
            },
          ],
          volumes: [{ name: 'probe', image: { reference: image } }],
        },
      },
    });
    return pod.spec?.volumes?.some((v) => v.name === 'probe' && v.image) === true;
  }

  async deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void> {
    await this.#core.deleteNamespacedPod({ name, namespace, ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}) });
  }

  async replaceVmi(namespace: string, name: string, vmi: VirtualMachineInstance): Promise<Typed<VirtualMachineInstance>> {
    return (await this.#custom.replaceNamespacedCustomObject({ ...VMIS, namespace, name, body: vmi })) as Typed<VirtualMachineInstance>;
  }

  async createVmi(namespace: string, vmi: VirtualMachineInstance): Promise<Typed<VirtualMachineInstance>> {
    return (await this.#custom.createNamespacedCustomObject({ ...VMIS, namespace, body: vmi })) as Typed<VirtualMachineInstance>;
  }

  async patchVmi(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    await this.#custom.patchNamespacedCustomObject({ ...VMIS, namespace, name, body: jsonPatch(patch) });
  }

  async deleteVmi(namespace: string, name: string, uid: string | undefined): Promise<void> {
    await this.#custom.deleteNamespacedCustomObject({ ...VMIS, namespace, name, body: { preconditions: { uid } } });
  }

  async patchVm(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<Typed<VirtualMachine>> {
    return (await this.#custom.patchNamespacedCustomObject({ ...VMS, namespace, name, body: jsonPatch(patch) })) as Typed<VirtualMachine>;
  }

  async createDataVolume(namespace: string, dv: DataVolume): Promise<Typed<DataVolume>> {
    return (await this.#custom.createNamespacedCustomObject({ ...DATAVOLUMES, namespace, body: dv })) as Typed<DataVolume>;
  }

  async patchDataVolume(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    await this.#custom.patchNamespacedCustomObject({ ...DATAVOLUMES, namespace, name, body: jsonPatch(patch) });
  }

  async replaceVmStatus(namespace: string, name: string, vm: VirtualMachine): Promise<void> {
    await this.#custom.replaceNamespacedCustomObjectStatus({ ...VMS, namespace, name, body: vm });
  }

  async patchNode(name: string, patch: JsonPatchOperation[]): Promise<void> {
    await this.#core.patchNode({ name, body: jsonPatch(patch) });
  }

  async replaceReplicaSetStatus(namespace: string, name: string, rs: VirtualMachineInstanceReplicaSet): Promise<void> {
    await this.#custom.replaceNamespacedCustomObjectStatus({ ...REPLICASETS, namespace, name, body: rs });
  }

  async patchVmStatus(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    await this.#custom.patchNamespacedCustomObjectStatus({ ...VMS, namespace, name, body: jsonPatch(patch) });
  }

  async createControllerRevision(namespace: string, revision: V1ControllerRevision): Promise<void> {
    await this.#apps.createNamespacedControllerRevision({ namespace, body: revision });
  }

  async deleteControllerRevision(namespace: string, name: string): Promise<void> {
    await this.#apps.deleteNamespacedControllerRevision({ namespace, name });
  }

  async createVm(namespace: string, vm: VirtualMachine): Promise<Typed<VirtualMachine>> {
    return (await this.#custom.createNamespacedCustomObject({ ...VMS, namespace, body: vm })) as Typed<VirtualMachine>;
  }

  async deleteVm(namespace: string, name: string, uid: string | undefined): Promise<void> {
    await this.#custom.deleteNamespacedCustomObject({ ...VMS, namespace, name, body: { preconditions: { uid } } });
  }

  async replacePoolStatus(namespace: string, name: string, pool: VirtualMachinePool): Promise<void> {
    await this.#custom.replaceNamespacedCustomObjectStatus({ ...POOLS, namespace, name, body: pool });
  }

  async replaceMigrationStatus(
    namespace: string,
    name: string,
    migration: VirtualMachineInstanceMigration,
  ): Promise<Typed<VirtualMachineInstanceMigration>> {
    return (await this.#custom.replaceNamespacedCustomObjectStatus({
      ...MIGRATIONS,
      namespace,
      name,
      body: migration,
    })) as Typed<VirtualMachineInstanceMigration>;
  }

  async createMigration(namespace: string, migration: VirtualMachineInstanceMigration): Promise<Typed<VirtualMachineInstanceMigration>> {
    return (await this.#custom.createNamespacedCustomObject({
      ...MIGRATIONS,
      namespace,
      body: migration,
    })) as Typed<VirtualMachineInstanceMigration>;
  }

  async patchMigration(namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    await this.#custom.patchNamespacedCustomObject({ ...MIGRATIONS, namespace, name, body: jsonPatch(patch) });
  }

  async patchCustomStatus(kind: NotSupportedKind, namespace: string, name: string, patch: JsonPatchOperation[]): Promise<void> {
    const { group, version, plural } = kind;
    await this.#custom.patchNamespacedCustomObjectStatus({ group, version, plural, namespace, name, body: jsonPatch(patch) });
  }
}
