// CDI's kinds (cdi.kubevirt.io/v1beta1) that kubevirt-ts serves when CDI itself
// is not installed: DataVolumes, and the cluster-wide CDIConfig that tells
// clients such as virtctl image-upload where the upload proxy is.
import { Arr, Bool, Int32, Obj, Opt, QuantityMap, Str, StringMap, Unstructured } from './builders.ts';
import { Condition, DataVolumeSpec } from './core.ts';

export { DataVolumeSpec };

export const DataVolumeStatus = () =>
  Obj({
    claimName: Opt(Str('The name of the PersistentVolumeClaim this DataVolume fills.')),
    phase: Opt(Str()),
    progress: Opt(Str('How far the population is, as "NN.N%", or "N/A".')),
    restartCount: Opt(Int32('How many times the population pod restarted.')),
    conditions: Opt(Arr(Obj({ ...Condition().properties, lastHeartbeatTime: Opt(Str()) }))),
  });

const FilesystemOverhead = () => Obj({ global: Opt(Str()), storageClass: Opt(StringMap()) });

export const CDIConfigSpec = () =>
  Obj({
    uploadProxyURLOverride: Opt(Str()),
    importProxy: Opt(Unstructured()),
    scratchSpaceStorageClass: Opt(Str()),
    podResourceRequirements: Opt(Obj({ limits: Opt(QuantityMap()), requests: Opt(QuantityMap()) })),
    featureGates: Opt(Arr(Str())),
    filesystemOverhead: Opt(FilesystemOverhead()),
    preallocation: Opt(Bool()),
    insecureRegistries: Opt(Arr(Str())),
    dataVolumeTTLSeconds: Opt(Int32()),
    tlsSecurityProfile: Opt(Unstructured()),
    imagePullSecrets: Opt(Arr(Obj({ name: Opt(Str()) }))),
    logVerbosity: Opt(Int32()),
  });

export const CDIConfigStatus = () =>
  Obj({
    uploadProxyURL: Opt(Str()),
    uploadProxyCA: Opt(Str()),
    importProxy: Opt(Unstructured()),
    scratchSpaceStorageClass: Opt(Str()),
    defaultPodResourceRequirements: Opt(Obj({ limits: Opt(QuantityMap()), requests: Opt(QuantityMap()) })),
    filesystemOverhead: Opt(FilesystemOverhead()),
    preallocation: Opt(Bool()),
    imagePullSecrets: Opt(Arr(Obj({ name: Opt(Str()) }))),
  });
