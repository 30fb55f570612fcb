// The TypeScript types of every kind, derived from the schemas that also yield the CRDs.
import type { Static, TSchema } from './schema/builders.ts';
import type * as V from './schema/vmi.ts';
import type * as K from './schema/kinds.ts';
import type * as C from './schema/cdi.ts';
import type * as SK from './schema/side-kinds.ts';
import type { ObjectMeta } from './schema/core.ts';

export type { ObjectMeta, OwnerReference } from './schema/core.ts';

type S<F extends () => TSchema> = Static<ReturnType<F>>;

export interface KubeObject<Spec, Status = undefined> {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export type VirtualMachineInstanceSpec = S<typeof V.VirtualMachineInstanceSpec>;
export type VirtualMachineInstanceStatus = S<typeof V.VirtualMachineInstanceStatus>;
export type DomainSpec = S<typeof V.DomainSpec>;
export type Disk = S<typeof V.Disk>;
export type Volume = S<typeof V.Volume>;
export type Interface = S<typeof V.Interface>;
export type Network = S<typeof V.Network>;
export type Probe = S<typeof V.Probe>;
export type VirtualMachineInstance = KubeObject<VirtualMachineInstanceSpec, VirtualMachineInstanceStatus>;

export type VirtualMachineSpec = S<typeof K.VirtualMachineSpec>;
export type VirtualMachineStatus = S<typeof K.VirtualMachineStatus>;
export type VirtualMachine = KubeObject<VirtualMachineSpec, VirtualMachineStatus>;
export type VirtualMachineInstanceTemplateSpec = S<typeof K.VirtualMachineInstanceTemplateSpec>;

export type VirtualMachineInstanceReplicaSetSpec = S<typeof K.VirtualMachineInstanceReplicaSetSpec>;
export type VirtualMachineInstanceReplicaSet = KubeObject<
  VirtualMachineInstanceReplicaSetSpec,
  S<typeof K.VirtualMachineInstanceReplicaSetStatus>
>;

export type VirtualMachineInstanceMigrationSpec = S<typeof K.VirtualMachineInstanceMigrationSpec>;
export type VirtualMachineInstanceMigration = KubeObject<
  VirtualMachineInstanceMigrationSpec,
  S<typeof K.VirtualMachineInstanceMigrationStatus>
>;

export type VirtualMachinePoolSpec = S<typeof K.VirtualMachinePoolSpec>;
export type VirtualMachinePool = KubeObject<VirtualMachinePoolSpec, S<typeof K.VirtualMachinePoolStatus>>;

export type VirtualMachineInstancetypeSpec = S<typeof K.VirtualMachineInstancetypeSpec>;
export type VirtualMachineInstancetype = KubeObject<VirtualMachineInstancetypeSpec>;
export type VirtualMachinePreferenceSpec = S<typeof K.VirtualMachinePreferenceSpec>;
export type VirtualMachinePreference = KubeObject<VirtualMachinePreferenceSpec>;

export type MigrationPolicySpec = S<typeof K.MigrationPolicySpec>;
export type MigrationPolicy = KubeObject<MigrationPolicySpec, Record<string, never>>;

export type KubeVirtConfiguration = S<typeof K.KubeVirtConfiguration>;
export type KubeVirtSpec = S<typeof K.KubeVirtSpec>;
export type KubeVirtStatus = S<typeof K.KubeVirtStatus>;
export type KubeVirt = KubeObject<KubeVirtSpec, KubeVirtStatus>;

export type DataVolumeSpec = S<typeof C.DataVolumeSpec>;
export type DataVolumeStatus = S<typeof C.DataVolumeStatus>;
export type DataVolume = KubeObject<DataVolumeSpec, DataVolumeStatus>;
export type CDIConfig = KubeObject<S<typeof C.CDIConfigSpec>, S<typeof C.CDIConfigStatus>>;

export type VirtualMachineInstancePreset = KubeObject<S<typeof SK.VirtualMachineInstancePresetSpec>>;
export type VirtualMachineSnapshotStatus = S<typeof SK.VirtualMachineSnapshotStatus>;
export type VirtualMachineSnapshotContentStatus = S<typeof SK.VirtualMachineSnapshotContentStatus>;
export type VirtualMachineRestoreStatus = S<typeof SK.VirtualMachineRestoreStatus>;
export type VirtualMachineExportStatus = S<typeof SK.VirtualMachineExportStatus>;
export type VirtualMachineCloneStatus = S<typeof SK.VirtualMachineCloneStatus>;
export type VirtualMachineBackupStatus = S<typeof SK.VirtualMachineBackupStatus>;
