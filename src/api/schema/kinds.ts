// Spec and status schemas of every kubevirt.io kind other than the VMI.
import {
  Type,
  Obj,
  Opt,
  Str,
  Bool,
  Int32,
  Int64,
  Arr,
  StrList,
  StringMap,
  Quantity,
  Time,
  IntOrString,
  Empty,
  Duration,
  MapOf,
  Unstructured,
} from './builders.ts';
import {
  EmbeddedObjectMeta,
  LabelSelector,
  Condition,
  DataVolumeSpec,
  ResourceRequirements,
  Toleration,
  Affinity,
  LocalObjectReference,
} from './core.ts';
import {
  VirtualMachineInstanceSpec,
  MigrationState,
  FeatureState,
  GPU,
  HostDevice,
  LaunchSecurity,
  NUMA,
  Realtime,
  Hugepages,
  DiskIOThreads,
  ClockOffset,
  Timer,
  CPUFeature,
  VGPUOptions,
  BlockSize,
  TPMDevice,
  FeatureAPIC,
  Hyperv,
  FeatureKVM,
  EFI,
} from './vmi.ts';

export const VirtualMachineInstanceTemplateSpec = () =>
  Obj({ metadata: Opt(EmbeddedObjectMeta()), spec: Opt(VirtualMachineInstanceSpec()) });

const Matcher = () =>
  Obj({
    name: Opt(Str()),
    kind: Opt(Str()),
    revisionName: Opt(Str()),
    inferFromVolume: Opt(Str()),
    inferFromVolumeFailurePolicy: Opt(Str()),
  });

export const VirtualMachineSpec = () =>
  Obj({
    running: Opt(Bool('Running controls whether the VMI exists. Deprecated: use runStrategy.')),
    runStrategy: Opt(Str()),
    instancetype: Opt(Matcher()),
    preference: Opt(Matcher()),
    template: VirtualMachineInstanceTemplateSpec(),
    dataVolumeTemplates: Opt(
      Arr(
        Obj({
          apiVersion: Opt(Str()),
          kind: Opt(Str()),
          metadata: Opt(EmbeddedObjectMeta()),
          spec: DataVolumeSpec(),
          status: Opt(Empty()),
        }),
      ),
    ),
    updateVolumesStrategy: Opt(Str()),
  });

const StorageMigratedVolume = () => Obj({ volumeName: Str(), sourcePVCInfo: Opt(Unstructured()), destinationPVCInfo: Opt(Unstructured()) });

const InstancetypeStatusRef = () =>
  Obj({
    name: Opt(Str()),
    kind: Opt(Str()),
    controllerRevisionRef: Opt(Obj({ name: Opt(Str()) })),
    inferFromVolume: Opt(Str()),
    inferFromVolumeFailurePolicy: Opt(Str()),
  });

export const VirtualMachineStatus = () =>
  Obj({
    snapshotInProgress: Opt(Str()),
    restoreInProgress: Opt(Str()),
    created: Opt(Bool()),
    ready: Opt(Bool()),
    printableStatus: Opt(Str()),
    conditions: Opt(Arr(Condition())),
    stateChangeRequests: Opt(Arr(Obj({ action: Str(), data: Opt(StringMap()), uid: Opt(Str()) }))),
    volumeRequests: Opt(Arr(Obj({ addVolumeOptions: Opt(Unstructured()), removeVolumeOptions: Opt(Unstructured()) }))),
    volumeSnapshotStatuses: Opt(Arr(Obj({ name: Str(), enabled: Bool(), reason: Opt(Str()) }))),
    startFailure: Opt(Obj({ consecutiveFailCount: Opt(Type.Integer()), lastFailedVMIUID: Opt(Str()), retryAfterTimestamp: Opt(Time()) })),
    memoryDumpRequest: Opt(
      Obj({
        claimName: Str(),
        phase: Str(),
        remove: Opt(Bool()),
        startTimestamp: Opt(Time()),
        endTimestamp: Opt(Time()),
        fileName: Opt(Str()),
        message: Opt(Str()),
      }),
    ),
    observedGeneration: Opt(Int64()),
    desiredGeneration: Opt(Int64()),
    runStrategy: Opt(Str()),
    volumeUpdateState: Opt(Obj({ volumeMigrationState: Opt(Obj({ migratedVolumes: Opt(Arr(StorageMigratedVolume())) })) })),
    changedBlockTracking: Opt(Obj({ state: Str(), backupStatus: Opt(Unstructured()) })),
    instancetypeRef: Opt(InstancetypeStatusRef()),
    preferenceRef: Opt(InstancetypeStatusRef()),
  });

const ReplicaStatus = () =>
  Obj({
    replicas: Opt(Int32()),
    readyReplicas: Opt(Int32()),
    conditions: Opt(Arr(Condition())),
    labelSelector: Opt(Str()),
  });

export const VirtualMachineInstanceReplicaSetSpec = () =>
  Obj({
    replicas: Opt(Int32()),
    selector: LabelSelector(),
    template: VirtualMachineInstanceTemplateSpec(),
    paused: Opt(Bool()),
  });
export const VirtualMachineInstanceReplicaSetStatus = ReplicaStatus;

export const VirtualMachineInstanceMigrationSpec = () =>
  Obj({
    vmiName: Opt(Str()),
    addedNodeSelector: Opt(StringMap()),
    sendTo: Opt(Obj({ migrationID: Str(), connectURL: Str() })),
    receive: Opt(Obj({ migrationID: Str() })),
    priority: Opt(Str()),
  });

export const VirtualMachineInstanceMigrationStatus = () =>
  Obj({
    phase: Opt(Str()),
    conditions: Opt(Arr(Condition())),
    phaseTransitionTimestamps: Opt(Arr(Obj({ phase: Opt(Str()), phaseTransitionTimestamp: Opt(Time()) }))),
    migrationState: Opt(MigrationState()),
    synchronizationAddresses: Opt(StrList()),
  });

const PoolSelectionPolicy = () =>
  Obj({
    sortPolicy: Opt(Str()),
    selectors: Opt(
      Obj({
        labelSelector: Opt(LabelSelector()),
        nodeSelectorRequirementMatcher: Opt(Arr(Obj({ key: Str(), operator: Str(), values: Opt(Arr(Type.String(), 'atomic')) }))),
      }),
    ),
  });

export const VirtualMachinePoolSpec = () =>
  Obj({
    replicas: Opt(Int32()),
    selector: LabelSelector(),
    virtualMachineTemplate: Obj({ metadata: Opt(EmbeddedObjectMeta()), spec: VirtualMachineSpec() }),
    paused: Opt(Bool()),
    nameGeneration: Opt(Obj({ appendIndexToConfigMapRefs: Opt(Bool()), appendIndexToSecretRefs: Opt(Bool()) })),
    maxUnavailable: Opt(IntOrString()),
    scaleInStrategy: Opt(
      Obj({
        unmanaged: Opt(Empty()),
        opportunistic: Opt(Obj({ statePreservation: Opt(Str()) })),
        proactive: Opt(Obj({ selectionPolicy: Opt(PoolSelectionPolicy()), statePreservation: Opt(Str()) })),
      }),
    ),
    updateStrategy: Opt(
      Obj({
        unmanaged: Opt(Empty()),
        opportunistic: Opt(Empty()),
        proactive: Opt(Obj({ selectionPolicy: Opt(PoolSelectionPolicy()) })),
      }),
    ),
    autohealing: Opt(Obj({ startUpFailureThreshold: Opt(Type.Integer()), minFailingToStartDuration: Opt(Duration()) })),
  });
export const VirtualMachinePoolStatus = ReplicaStatus;

export const VirtualMachineInstancetypeSpec = () =>
  Obj({
    nodeSelector: Opt(StringMap()),
    schedulerName: Opt(Str()),
    cpu: Obj({
      guest: Type.Integer(),
      model: Opt(Str()),
      dedicatedCPUPlacement: Opt(Bool()),
      numa: Opt(NUMA()),
      isolateEmulatorThread: Opt(Bool()),
      realtime: Opt(Realtime()),
      maxSockets: Opt(Type.Integer()),
    }),
    memory: Obj({
      guest: Quantity(),
      hugepages: Opt(Hugepages()),
      overcommitPercent: Opt(Type.Integer()),
      maxGuest: Opt(Quantity()),
    }),
    gpus: Opt(Arr(GPU())),
    hostDevices: Opt(Arr(HostDevice())),
    ioThreadsPolicy: Opt(Str()),
    ioThreads: Opt(DiskIOThreads()),
    launchSecurity: Opt(LaunchSecurity()),
    annotations: Opt(StringMap()),
  });

export const VirtualMachinePreferenceSpec = () =>
  Obj({
    clock: Opt(Obj({ preferredClockOffset: Opt(Obj(ClockOffset)), preferredTimer: Opt(Timer()) })),
    cpu: Opt(
      Obj({
        preferredCPUTopology: Opt(Str()),
        spreadOptions: Opt(Obj({ across: Opt(Str()), ratio: Opt(Type.Integer()) })),
        preferredCPUFeatures: Opt(Arr(CPUFeature())),
      }),
    ),
    devices: Opt(
      Obj({
        preferredAutoattachGraphicsDevice: Opt(Bool()),
        preferredAutoattachMemBalloon: Opt(Bool()),
        preferredAutoattachPodInterface: Opt(Bool()),
        preferredAutoattachSerialConsole: Opt(Bool()),
        preferredAutoattachInputDevice: Opt(Bool()),
        preferredDisableHotplug: Opt(Bool()),
        preferredVirtualGPUOptions: Opt(VGPUOptions()),
        preferredSoundModel: Opt(Str()),
        preferredUseVirtioTransitional: Opt(Bool()),
        preferredInputBus: Opt(Str()),
        preferredInputType: Opt(Str()),
        preferredDiskBus: Opt(Str()),
        preferredLunBus: Opt(Str()),
        preferredCdromBus: Opt(Str()),
        preferredDiskDedicatedIoThread: Opt(Bool()),
        preferredDiskCache: Opt(Str()),
        preferredDiskIO: Opt(Str()),
        preferredDiskBlockSize: Opt(BlockSize()),
        preferredInterfaceModel: Opt(Str()),
        preferredRng: Opt(Empty()),
        preferredBlockMultiQueue: Opt(Bool()),
        preferredNetworkInterfaceMultiQueue: Opt(Bool()),
        preferredTPM: Opt(TPMDevice()),
        preferredInterfaceMasquerade: Opt(Empty()),
        preferredPanicDeviceModel: Opt(Str()),
        preferredVideoType: Opt(Str()),
      }),
    ),
    features: Opt(
      Obj({
        preferredAcpi: Opt(FeatureState()),
        preferredApic: Opt(FeatureAPIC()),
        preferredHyperv: Opt(Hyperv()),
        preferredKvm: Opt(FeatureKVM()),
        preferredPvspinlock: Opt(FeatureState()),
        preferredSmm: Opt(FeatureState()),
      }),
    ),
    firmware: Opt(
      Obj({
        preferredUseBios: Opt(Bool()),
        preferredUseBiosSerial: Opt(Bool()),
        preferredUseEfi: Opt(Bool()),
        preferredUseSecureBoot: Opt(Bool()),
        preferredEfi: Opt(EFI()),
      }),
    ),
    machine: Opt(Obj({ preferredMachineType: Opt(Str()) })),
    volumes: Opt(Obj({ preferredStorageClassName: Opt(Str()) })),
    preferredSubdomain: Opt(Str()),
    preferredTerminationGracePeriodSeconds: Opt(Int64()),
    requirements: Opt(
      Obj({
        cpu: Opt(Obj({ guest: Type.Integer() })),
        memory: Opt(Obj({ guest: Quantity() })),
        architecture: Opt(Str()),
      }),
    ),
    annotations: Opt(StringMap()),
    preferSpreadSocketToCoreRatio: Opt(Type.Integer()),
    preferredArchitecture: Opt(Str()),
    preferredLaunchSecurity: Opt(LaunchSecurity()),
  });

export const MigrationPolicySpec = () =>
  Obj({
    selectors: Obj({ namespaceSelector: Opt(StringMap()), virtualMachineInstanceSelector: Opt(StringMap()) }),
    allowAutoConverge: Opt(Bool()),
    bandwidthPerMigration: Opt(Quantity()),
    completionTimeoutPerGiB: Opt(Int64()),
    maxDowntimeMs: Opt(Int64()),
    allowPostCopy: Opt(Bool()),
    allowWorkloadDisruption: Opt(Bool()),
    experimental: Opt(
      Obj({
        stallDetector: Opt(Unstructured()),
        downtimeTuning: Opt(Obj({ initialMs: Opt(Int64()), steps: Opt(Int32()) })),
        compression: Opt(Unstructured()),
      }),
    ),
  });

const ComponentConfig = () =>
  Obj({
    nodePlacement: Opt(Obj({ nodeSelector: Opt(StringMap()), affinity: Opt(Affinity()), tolerations: Opt(Arr(Toleration())) })),
    replicas: Opt(Type.Integer()),
  });

const MigrationConfiguration = () =>
  Obj({
    nodeDrainTaintKey: Opt(Str()),
    parallelOutboundMigrationsPerNode: Opt(Type.Integer()),
    parallelMigrationsPerCluster: Opt(Type.Integer()),
    allowAutoConverge: Opt(Bool()),
    bandwidthPerMigration: Opt(Quantity()),
    completionTimeoutPerGiB: Opt(Int64()),
    maxDowntimeMs: Opt(Int64()),
    progressTimeout: Opt(Int64()),
    utilityVolumesTimeout: Opt(Int64()),
    unsafeMigrationOverride: Opt(Bool()),
    allowPostCopy: Opt(Bool()),
    allowWorkloadDisruption: Opt(Bool()),
    disableTLS: Opt(Bool()),
    network: Opt(Str()),
    matchSELinuxLevelOnMigration: Opt(Bool()),
  });

const ArchSpecificConfiguration = () =>
  Obj({ ovmfPath: Opt(Str()), emulatedMachines: Opt(Arr(Type.String(), 'atomic')), machineType: Opt(Str()) });

export const KubeVirtConfiguration = () =>
  Obj({
    cpuModel: Opt(Str()),
    cpuRequest: Opt(Quantity()),
    developerConfiguration: Opt(
      Obj({
        featureGates: Opt(StrList()),
        disabledFeatureGates: Opt(StrList()),
        pvcTolerateLessSpaceUpToPercent: Opt(Type.Integer()),
        minimumReservePVCBytes: Opt(Int64()),
        memoryOvercommit: Opt(Type.Integer()),
        nodeSelectors: Opt(StringMap()),
        useEmulation: Opt(Bool()),
        cpuAllocationRatio: Opt(Type.Integer()),
        minimumClusterTSCFrequency: Opt(Int64()),
        diskVerification: Opt(Obj({ memoryLimit: Quantity() })),
        logVerbosity: Opt(
          Obj({
            virtAPI: Opt(Type.Integer()),
            virtController: Opt(Type.Integer()),
            virtHandler: Opt(Type.Integer()),
            virtLauncher: Opt(Type.Integer()),
            virtOperator: Opt(Type.Integer()),
            virtSynchronizationController: Opt(Type.Integer()),
            nodeVerbosity: Opt(MapOf(Type.Integer())),
          }),
        ),
        clusterProfiler: Opt(Bool()),
      }),
    ),
    emulatedMachines: Opt(Arr(Type.String(), 'atomic')),
    imagePullPolicy: Opt(Str()),
    migrations: Opt(MigrationConfiguration()),
    machineType: Opt(Str()),
    network: Opt(
      Obj({
        defaultNetworkInterface: Opt(Str()),
        permitSlirpInterface: Opt(Bool()),
        permitBridgeInterfaceOnPodNetwork: Opt(Bool()),
        binding: Opt(
          MapOf(
            Obj({
              sidecarImage: Opt(Str()),
              networkAttachmentDefinition: Opt(Str()),
              domainAttachmentType: Opt(Str()),
              migration: Opt(Obj({ method: Opt(Str()) })),
              downwardAPI: Opt(Str()),
              computeResourceOverhead: Opt(ResourceRequirements()),
            }),
          ),
        ),
      }),
    ),
    ovmfPath: Opt(Str()),
    selinuxLauncherType: Opt(Str()),
    defaultRuntimeClass: Opt(Str()),
    smbios: Opt(Obj({ manufacturer: Opt(Str()), product: Opt(Str()), version: Opt(Str()), sku: Opt(Str()), family: Opt(Str()) })),
    architectureConfiguration: Opt(
      Obj({
        amd64: Opt(ArchSpecificConfiguration()),
        arm64: Opt(ArchSpecificConfiguration()),
        ppc64le: Opt(ArchSpecificConfiguration()),
        s390x: Opt(ArchSpecificConfiguration()),
        defaultArchitecture: Opt(Str()),
      }),
    ),
    evictionStrategy: Opt(Str()),
    additionalGuestMemoryOverheadRatio: Opt(Str()),
    supportContainerResources: Opt(Arr(Obj({ type: Str(), resources: ResourceRequirements() }), { mapKeys: ['type'] })),
    supportedGuestAgentVersions: Opt(StrList()),
    memBalloonStatsPeriod: Opt(Type.Integer()),
    permittedHostDevices: Opt(Unstructured()),
    mediatedDevicesConfiguration: Opt(Unstructured()),
    minCPUModel: Opt(Str()),
    obsoleteCPUModels: Opt(MapOf(Type.Boolean())),
    virtualMachineInstancesPerNode: Opt(Type.Integer()),
    apiConfiguration: Opt(Unstructured()),
    webhookConfiguration: Opt(Unstructured()),
    controllerConfiguration: Opt(Unstructured()),
    handlerConfiguration: Opt(Unstructured()),
    tlsConfiguration: Opt(Obj({ minTLSVersion: Opt(Str()), ciphers: Opt(StrList()) })),
    seccompConfiguration: Opt(Unstructured()),
    vmStateStorageClass: Opt(Str()),
    virtualMachineOptions: Opt(Unstructured()),
    ksmConfiguration: Opt(Obj({ nodeLabelSelector: Opt(LabelSelector()) })),
    autoCPULimitNamespaceLabelSelector: Opt(LabelSelector()),
    liveUpdateConfiguration: Opt(
      Obj({ maxHotplugRatio: Opt(Type.Integer()), maxCpuSockets: Opt(Type.Integer()), maxGuest: Opt(Quantity()) }),
    ),
    vmRolloutStrategy: Opt(Str()),
    commonInstancetypesDeployment: Opt(Obj({ enabled: Opt(Bool()) })),
    virtTemplateDeployment: Opt(Obj({ enabled: Opt(Bool()) })),
    instancetype: Opt(Obj({ referencePolicy: Opt(Str()) })),
    hypervisors: Opt(Arr(Obj({ name: Opt(Str()) }))),
    changedBlockTrackingLabelSelectors: Opt(
      Obj({ namespaceLabelSelector: Opt(LabelSelector()), virtualMachineLabelSelector: Opt(LabelSelector()) }),
    ),
    persistentReservationConfiguration: Opt(Unstructured()),
    confidentialCompute: Opt(Unstructured()),
    roleAggregationStrategy: Opt(Str()),
  });

export const KubeVirtSpec = () =>
  Obj({
    imageTag: Opt(Str()),
    imageRegistry: Opt(Str()),
    imagePullPolicy: Opt(Str()),
    imagePullSecrets: Opt(Arr(LocalObjectReference())),
    monitorNamespace: Opt(Str()),
    serviceMonitorNamespace: Opt(Str()),
    monitorAccount: Opt(Str()),
    workloadUpdateStrategy: Opt(
      Obj({
        workloadUpdateMethods: Opt(StrList()),
        batchEvictionSize: Opt(Type.Integer()),
        batchEvictionInterval: Opt(Duration()),
      }),
    ),
    uninstallStrategy: Opt(Str()),
    certificateRotateStrategy: Opt(
      Obj({
        selfSigned: Opt(
          Obj({
            caRotateInterval: Opt(Duration()),
            certRotateInterval: Opt(Duration()),
            caOverlapInterval: Opt(Duration()),
            ca: Opt(Obj({ duration: Opt(Duration()), renewBefore: Opt(Duration()) })),
            server: Opt(Obj({ duration: Opt(Duration()), renewBefore: Opt(Duration()) })),
          }),
        ),
      }),
    ),
    productVersion: Opt(Str()),
    productName: Opt(Str()),
    productComponent: Opt(Str()),
    synchronizationPort: Opt(Str()),
    configuration: Opt(KubeVirtConfiguration()),
    infra: Opt(ComponentConfig()),
    workloads: Opt(ComponentConfig()),
    customizeComponents: Opt(
      Obj({
        patches: Opt(Arr(Obj({ resourceName: Str(), resourceType: Str(), patch: Str(), type: Str() }), 'atomic')),
        flags: Opt(Obj({ api: Opt(StringMap()), controller: Opt(StringMap()), handler: Opt(StringMap()) })),
      }),
    ),
  });

export const KubeVirtStatus = () =>
  Obj({
    phase: Opt(Str()),
    conditions: Opt(Arr(Condition())),
    operatorVersion: Opt(Str()),
    targetKubeVirtRegistry: Opt(Str()),
    targetKubeVirtVersion: Opt(Str()),
    targetDeploymentConfig: Opt(Str()),
    targetDeploymentID: Opt(Str()),
    observedKubeVirtRegistry: Opt(Str()),
    observedKubeVirtVersion: Opt(Str()),
    observedDeploymentConfig: Opt(Str()),
    observedDeploymentID: Opt(Str()),
    outdatedVirtualMachineInstanceWorkloads: Opt(Type.Integer()),
    observedGeneration: Opt(Int64()),
    defaultArchitecture: Opt(Str()),
    generations: Opt(
      Arr(
        Obj({
          group: Str(),
          resource: Str(),
          namespace: Opt(Str()),
          name: Str(),
          lastGeneration: Int64(),
          hash: Opt(Str()),
        }),
      ),
    ),
    synchronizationAddresses: Opt(StrList()),
  });
