// Schemas of the kinds upstream installs beside the core ones and kubevirt-ts
// serves without carrying them out yet: the deprecated VMI presets
// (kubevirt.io), snapshots and restores (snapshot.kubevirt.io), exports
// (export.kubevirt.io), clones (clone.kubevirt.io) and backups
// (backup.kubevirt.io). The fields are upstream's; where upstream embeds a
// whole VM or claim spec, that subtree is kept as given.
import { Arr, Bool, Duration, Int64, Obj, Opt, Str, StrList, StringMap, Time, Type, Unstructured } from './builders.ts';
import { Condition, LabelSelector } from './core.ts';
import { DomainSpec } from './vmi.ts';

const TypedLocalObjectReference = () => Obj({ apiGroup: Opt(Str()), kind: Str(), name: Str() }, { 'x-kubernetes-map-type': 'atomic' });
const SnapshotError = () => Obj({ time: Opt(Time()), message: Opt(Str()) });

export const VirtualMachineInstancePresetSpec = () =>
  Obj({
    selector: LabelSelector(),
    domain: Opt(DomainSpec()),
  });

export const VirtualMachineSnapshotSpec = () =>
  Obj({ source: TypedLocalObjectReference(), deletionPolicy: Opt(Str()), failureDeadline: Opt(Duration()) });

export const VirtualMachineSnapshotStatus = () =>
  Obj({
    sourceUID: Opt(Str()),
    virtualMachineSnapshotContentName: Opt(Str()),
    creationTime: Opt(Time()),
    phase: Opt(Str()),
    readyToUse: Opt(Bool()),
    error: Opt(SnapshotError()),
    conditions: Opt(Arr(Condition())),
    indications: Opt(Arr(Type.String(), 'set')),
    sourceIndications: Opt(Arr(Obj({ indication: Str(), message: Str() }), { mapKeys: ['indication'] })),
    snapshotVolumes: Opt(Obj({ includedVolumes: Opt(StrList()), excludedVolumes: Opt(StrList()) })),
  });

export const VirtualMachineSnapshotContentSpec = () =>
  Obj({
    virtualMachineSnapshotName: Opt(Str()),
    source: Obj({ virtualMachine: Opt(Unstructured('The VirtualMachine as it was when the snapshot was taken.')) }),
    volumeBackups: Opt(
      Arr(
        Obj({
          volumeName: Str(),
          persistentVolumeClaim: Unstructured('The claim (metadata and spec) the volume was backed by.'),
          volumeSnapshotName: Opt(Str()),
        }),
      ),
    ),
  });

export const VirtualMachineSnapshotContentStatus = () =>
  Obj({
    creationTime: Opt(Time()),
    readyToUse: Opt(Bool()),
    error: Opt(SnapshotError()),
    volumeSnapshotStatus: Opt(
      Arr(Obj({ volumeSnapshotName: Str(), creationTime: Opt(Time()), readyToUse: Opt(Bool()), error: Opt(SnapshotError()) })),
    ),
  });

export const VirtualMachineRestoreSpec = () =>
  Obj({
    target: TypedLocalObjectReference(),
    virtualMachineSnapshotName: Str(),
    targetReadinessPolicy: Opt(Str()),
    volumeRestorePolicy: Opt(Str()),
    volumeOwnershipPolicy: Opt(Str()),
    volumeRestoreOverrides: Opt(
      Arr(Obj({ volumeName: Opt(Str()), restoreName: Opt(Str()), labels: Opt(StringMap()), annotations: Opt(StringMap()) })),
    ),
    patches: Opt(StrList()),
  });

export const VirtualMachineRestoreStatus = () =>
  Obj({
    restores: Opt(Arr(Obj({ volumeName: Str(), persistentVolumeClaim: Str(), volumeSnapshotName: Str(), dataVolumeName: Opt(Str()) }))),
    restoreTime: Opt(Time()),
    deletedDataVolumes: Opt(StrList()),
    complete: Opt(Bool()),
    conditions: Opt(Arr(Condition())),
  });

export const VirtualMachineExportSpec = () =>
  Obj({ source: TypedLocalObjectReference(), tokenSecretRef: Opt(Str()), ttlDuration: Opt(Duration()) });

const ExportLink = () =>
  Obj({
    cert: Str(),
    volumes: Opt(Arr(Obj({ name: Str(), formats: Opt(Arr(Obj({ format: Str(), url: Str() }))) }), { mapKeys: ['name'] })),
    backups: Opt(Arr(Obj({ name: Str(), endpoints: Opt(Arr(Obj({ endpoint: Str(), url: Str() }))) }), { mapKeys: ['name'] })),
    manifests: Opt(Arr(Obj({ type: Str(), url: Str() }), { mapKeys: ['type'] })),
  });

export const VirtualMachineExportStatus = () =>
  Obj({
    phase: Opt(Str()),
    links: Opt(Obj({ internal: Opt(ExportLink()), external: Opt(ExportLink()) })),
    tokenSecretRef: Opt(Str()),
    ttlExpirationTime: Opt(Time()),
    serviceName: Opt(Str()),
    virtualMachineName: Opt(Str()),
    conditions: Opt(Arr(Condition())),
  });

export const VirtualMachineCloneSpec = () =>
  Obj({
    source: TypedLocalObjectReference(),
    target: Opt(TypedLocalObjectReference()),
    annotationFilters: Opt(StrList()),
    labelFilters: Opt(StrList()),
    template: Opt(Obj({ annotationFilters: Opt(StrList()), labelFilters: Opt(StrList()) })),
    newMacAddresses: Opt(StringMap()),
    newSMBiosSerial: Opt(Str()),
    patches: Opt(StrList()),
    volumeNamePolicy: Opt(Str()),
  });

export const VirtualMachineCloneStatus = () =>
  Obj({
    creationTime: Opt(Time()),
    phase: Opt(Str()),
    conditions: Opt(Arr(Condition())),
    snapshotName: Opt(Str()),
    restoreName: Opt(Str()),
    targetName: Opt(Str()),
  });

/** metav1.Condition, which backups use (the other kinds have their own condition type). */
const MetaCondition = () =>
  Obj({
    type: Str(),
    status: Str(),
    observedGeneration: Opt(Int64()),
    lastTransitionTime: Time(),
    reason: Str(),
    message: Str(),
  });

const BackupVolumeInfo = () => Obj({ volumeName: Str(), dataEndpoint: Opt(Str()), mapEndpoint: Opt(Str()) });

export const VirtualMachineBackupSpec = () =>
  Obj({
    source: TypedLocalObjectReference(),
    mode: Opt(Str()),
    pvcName: Opt(Str()),
    skipQuiesce: Opt(Bool()),
    forceFullBackup: Opt(Bool()),
    tokenSecretRef: Opt(Str()),
    ttlDuration: Opt(Duration()),
  });

export const VirtualMachineBackupStatus = () =>
  Obj({
    type: Opt(Str()),
    conditions: Opt(Arr(MetaCondition())),
    checkpointName: Opt(Str()),
    endpointCert: Opt(Str()),
    includedVolumes: Opt(Arr(BackupVolumeInfo())),
    exportUID: Opt(Str()),
  });

export const VirtualMachineBackupTrackerSpec = () => Obj({ source: TypedLocalObjectReference() });

export const VirtualMachineBackupTrackerStatus = () =>
  Obj({
    latestCheckpoint: Opt(Obj({ name: Opt(Str()), creationTime: Opt(Time()), volumes: Opt(Arr(BackupVolumeInfo())) })),
    checkpointRedefinitionRequired: Opt(Bool()),
  });
