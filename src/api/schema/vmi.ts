// kubevirt.io/v1 VirtualMachineInstance: spec and status, field for field as upstream.
import {
  Type,
  Obj,
  Opt,
  Str,
  StrEnum,
  Bool,
  Int32,
  Int64,
  Arr,
  StrList,
  StringMap,
  QuantityMap,
  Quantity,
  Time,
  Empty,
  MapOf,
} from './builders.ts';
import {
  Affinity,
  Toleration,
  TopologySpreadConstraint,
  PodDNSConfig,
  ExecAction,
  HTTPGetAction,
  TCPSocketAction,
  LocalObjectReference,
  PersistentVolumeClaimVolumeSource,
  DownwardAPIVolumeFile,
  Condition,
} from './core.ts';

export const FeatureState = () => Obj({ enabled: Opt(Bool()) });

const DiskTarget = () => Obj({ bus: Opt(Str()), pciAddress: Opt(Str()), readonly: Opt(Bool()) });
const LunTarget = () => Obj({ bus: Opt(Str()), readonly: Opt(Bool()), reservation: Opt(Bool()) });
const CDRomTarget = () => Obj({ bus: Opt(Str()), readonly: Opt(Bool()), tray: Opt(Str()) });

export const BlockSize = () =>
  Obj({
    custom: Opt(Obj({ logical: Type.Integer(), physical: Type.Integer(), discardGranularity: Opt(Type.Integer()) })),
    matchVolume: Opt(FeatureState()),
  });

export const VGPUOptions = () => Obj({ display: Opt(Obj({ enabled: Opt(Bool()), ramFB: Opt(FeatureState()) })) });
export const GPU = () =>
  Obj({
    name: Str(),
    deviceName: Opt(Str()),
    claimName: Opt(Str()),
    requestName: Opt(Str()),
    virtualGPUOptions: Opt(VGPUOptions()),
    tag: Opt(Str()),
  });
export const HostDevice = () =>
  Obj({ name: Str(), deviceName: Opt(Str()), claimName: Opt(Str()), requestName: Opt(Str()), tag: Opt(Str()) });
export const TPMDevice = () => Obj({ enabled: Opt(Bool()), persistent: Opt(Bool()) });
export const CPUFeature = () => Obj({ name: Str(), policy: Opt(Str()) });
export const NUMA = () => Obj({ guestMappingPassthrough: Opt(Empty()) });
export const Realtime = () => Obj({ mask: Opt(Str()) });
export const Hugepages = () => Obj({ pageSize: Opt(Str()) });
export const EFI = () => Obj({ secureBoot: Opt(Bool()), persistent: Opt(Bool()) });
export const DiskIOThreads = () => Obj({ supplementalPoolThreadCount: Opt(Type.Integer()) });
export const LaunchSecurity = () =>
  Obj({
    sev: Opt(
      Obj({
        policy: Opt(Obj({ encryptedState: Opt(Bool()) })),
        attestation: Opt(Empty()),
        session: Opt(Str()),
        dhCert: Opt(Str()),
      }),
    ),
    snp: Opt(Empty()),
    tdx: Opt(Empty()),
  });

export const Disk = () =>
  Obj({
    name: Str('Name is the device name'),
    disk: Opt(DiskTarget()),
    lun: Opt(LunTarget()),
    cdrom: Opt(CDRomTarget()),
    bootOrder: Opt(Type.Integer()),
    serial: Opt(Str()),
    dedicatedIOThread: Opt(Bool()),
    cache: Opt(Str()),
    io: Opt(Str()),
    tag: Opt(Str()),
    blockSize: Opt(BlockSize()),
    shareable: Opt(Bool()),
    errorPolicy: Opt(Str()),
    changedBlockTracking: Opt(Bool()),
  });

const Port = () => Obj({ name: Opt(Str()), protocol: Opt(Str()), port: Int32() });
const PortRange = () => Obj({ protocol: Opt(Str()), start: Int32(), end: Int32() });

export const Interface = () =>
  Obj({
    name: Str(),
    model: Opt(Str()),
    bridge: Opt(Empty()),
    slirp: Opt(Empty()),
    masquerade: Opt(Empty()),
    sriov: Opt(Empty()),
    macvtap: Opt(Empty()),
    passt: Opt(Empty()),
    passtBinding: Opt(Empty()),
    binding: Opt(Obj({ name: Str() })),
    ports: Opt(Arr(Port())),
    portRanges: Opt(Arr(PortRange())),
    macAddress: Opt(Str()),
    bootOrder: Opt(Type.Integer()),
    pciAddress: Opt(Str()),
    dhcpOptions: Opt(
      Obj({
        bootFileName: Opt(Str()),
        tftpServerName: Opt(Str()),
        ntpServers: Opt(StrList()),
        privateOptions: Opt(Arr(Obj({ option: Type.Integer(), value: Str() }))),
      }),
    ),
    tag: Opt(Str()),
    acpiIndex: Opt(Type.Integer()),
    state: Opt(Str()),
  });

export const Watchdog = () =>
  Obj({
    name: Str(),
    i6300esb: Opt(Obj({ action: Opt(Str()) })),
    diag288: Opt(Obj({ action: Opt(Str()) })),
  });

export const Devices = () =>
  Obj({
    useVirtioTransitional: Opt(Bool()),
    disableHotplug: Opt(Bool()),
    disks: Opt(Arr(Disk())),
    watchdog: Opt(Watchdog()),
    interfaces: Opt(Arr(Interface())),
    inputs: Opt(Arr(Obj({ bus: Opt(Str()), type: Str(), name: Str() }))),
    autoattachPodInterface: Opt(Bool()),
    autoattachGraphicsDevice: Opt(Bool()),
    autoattachSerialConsole: Opt(Bool()),
    logSerialConsole: Opt(Bool()),
    autoattachMemBalloon: Opt(Bool()),
    autoattachInputDevice: Opt(Bool()),
    autoattachVSOCK: Opt(Bool()),
    rng: Opt(Empty()),
    blockMultiQueue: Opt(Bool()),
    networkInterfaceMultiqueue: Opt(Bool()),
    gpus: Opt(Arr(GPU())),
    downwardMetrics: Opt(Empty()),
    panicDevices: Opt(Arr(Obj({ model: Opt(Str()) }))),
    filesystems: Opt(Arr(Obj({ name: Str(), virtiofs: Empty() }))),
    hostDevices: Opt(Arr(HostDevice())),
    clientPassthrough: Opt(Empty()),
    sound: Opt(Obj({ name: Str(), model: Opt(Str()) })),
    tpm: Opt(TPMDevice()),
    video: Opt(Obj({ type: Opt(Str()) })),
  });

export const CPU = () =>
  Obj({
    cores: Opt(Type.Integer()),
    sockets: Opt(Type.Integer()),
    maxSockets: Opt(Type.Integer()),
    threads: Opt(Type.Integer()),
    model: Opt(Str()),
    features: Opt(Arr(CPUFeature())),
    dedicatedCpuPlacement: Opt(Bool()),
    numa: Opt(NUMA()),
    isolateEmulatorThread: Opt(Bool()),
    realtime: Opt(Realtime()),
  });

export const Memory = () =>
  Obj({
    hugepages: Opt(Hugepages()),
    guest: Opt(Quantity()),
    maxGuest: Opt(Quantity()),
    reservedOverhead: Opt(Obj({ addedOverhead: Opt(Quantity()), memLock: Opt(Str()) })),
  });

export const Firmware = () =>
  Obj({
    uuid: Opt(Str()),
    bootloader: Opt(
      Obj({
        bios: Opt(Obj({ useSerial: Opt(Bool()) })),
        efi: Opt(EFI()),
      }),
    ),
    serial: Opt(Str()),
    kernelBoot: Opt(
      Obj({
        kernelArgs: Opt(Str()),
        container: Opt(
          Obj({
            image: Str(),
            imagePullSecret: Opt(Str()),
            imagePullPolicy: Opt(Str()),
            kernelPath: Opt(Str()),
            initrdPath: Opt(Str()),
          }),
        ),
      }),
    ),
    acpi: Opt(Obj({ slicNameRef: Opt(Str()), msdmNameRef: Opt(Str()) })),
  });

export const Timer = () =>
  Obj({
    hpet: Opt(Obj({ tickPolicy: Opt(Str()), present: Opt(Bool()) })),
    kvm: Opt(Obj({ present: Opt(Bool()) })),
    pit: Opt(Obj({ tickPolicy: Opt(Str()), present: Opt(Bool()) })),
    rtc: Opt(Obj({ tickPolicy: Opt(Str()), present: Opt(Bool()), track: Opt(Str()) })),
    hyperv: Opt(Obj({ present: Opt(Bool()) })),
  });

export const ClockOffset = {
  utc: Opt(Obj({ offsetSeconds: Opt(Type.Integer()) })),
  timezone: Opt(Str()),
};
export const Clock = () => Obj({ ...ClockOffset, timer: Opt(Timer()) });

export const Hyperv = () =>
  Obj({
    relaxed: Opt(FeatureState()),
    vapic: Opt(FeatureState()),
    spinlocks: Opt(Obj({ enabled: Opt(Bool()), spinlocks: Opt(Type.Integer()) })),
    vpindex: Opt(FeatureState()),
    runtime: Opt(FeatureState()),
    synic: Opt(FeatureState()),
    synictimer: Opt(Obj({ enabled: Opt(Bool()), direct: Opt(FeatureState()) })),
    reset: Opt(FeatureState()),
    vendorid: Opt(Obj({ enabled: Opt(Bool()), vendorid: Opt(Str()) })),
    frequencies: Opt(FeatureState()),
    reenlightenment: Opt(FeatureState()),
    tlbflush: Opt(Obj({ enabled: Opt(Bool()), direct: Opt(FeatureState()), extended: Opt(FeatureState()) })),
    ipi: Opt(FeatureState()),
    evmcs: Opt(FeatureState()),
  });

export const FeatureAPIC = () => Obj({ enabled: Opt(Bool()), endOfInterrupt: Opt(Bool()) });
export const FeatureKVM = () => Obj({ hidden: Opt(Bool()) });
export const Features = () =>
  Obj({
    acpi: Opt(FeatureState()),
    apic: Opt(FeatureAPIC()),
    hypervPassthrough: Opt(Obj({ enabled: Opt(Bool()) })),
    hyperv: Opt(Hyperv()),
    smm: Opt(FeatureState()),
    kvm: Opt(FeatureKVM()),
    pvspinlock: Opt(FeatureState()),
  });

export const DomainSpec = () =>
  Obj({
    resources: Opt(Obj({ requests: Opt(QuantityMap()), limits: Opt(QuantityMap()), overcommitGuestOverhead: Opt(Bool()) })),
    cpu: Opt(CPU()),
    memory: Opt(Memory()),
    machine: Opt(Obj({ type: Opt(Str()) })),
    firmware: Opt(Firmware()),
    clock: Opt(Clock()),
    features: Opt(Features()),
    devices: Devices(),
    ioThreadsPolicy: Opt(Str()),
    ioThreads: Opt(DiskIOThreads()),
    chassis: Opt(Obj({ manufacturer: Opt(Str()), version: Opt(Str()), serial: Opt(Str()), asset: Opt(Str()), sku: Opt(Str()) })),
    launchSecurity: Opt(LaunchSecurity()),
    rebootPolicy: Opt(StrEnum('Reboot', 'Terminate')),
  });

const CloudInitSource = () =>
  Obj({
    secretRef: Opt(LocalObjectReference()),
    userDataBase64: Opt(Str()),
    userData: Opt(Str()),
    networkDataSecretRef: Opt(LocalObjectReference()),
    networkDataBase64: Opt(Str()),
    networkData: Opt(Str()),
  });

const HotplugPvc = () => Obj({ claimName: Str(), readOnly: Opt(Bool()), hotpluggable: Opt(Bool()) });

export const Volume = () =>
  Obj({
    name: Str(),
    hostDisk: Opt(Obj({ path: Str(), type: Str(), capacity: Opt(Quantity()), shared: Opt(Bool()) })),
    persistentVolumeClaim: Opt(HotplugPvc()),
    cloudInitNoCloud: Opt(CloudInitSource()),
    cloudInitConfigDrive: Opt(CloudInitSource()),
    sysprep: Opt(Obj({ secret: Opt(LocalObjectReference()), configMap: Opt(LocalObjectReference()) })),
    containerDisk: Opt(Obj({ image: Str(), imagePullSecret: Opt(Str()), path: Opt(Str()), imagePullPolicy: Opt(Str()) })),
    ephemeral: Opt(Obj({ persistentVolumeClaim: Opt(PersistentVolumeClaimVolumeSource()) })),
    emptyDisk: Opt(Obj({ capacity: Quantity() })),
    dataVolume: Opt(Obj({ name: Str(), hotpluggable: Opt(Bool()) })),
    configMap: Opt(Obj({ name: Opt(Str()), optional: Opt(Bool()), volumeLabel: Opt(Str()) })),
    secret: Opt(Obj({ secretName: Opt(Str()), optional: Opt(Bool()), volumeLabel: Opt(Str()) })),
    downwardAPI: Opt(Obj({ fields: Opt(Arr(DownwardAPIVolumeFile())), volumeLabel: Opt(Str()) })),
    serviceAccount: Opt(Obj({ serviceAccountName: Opt(Str()) })),
    downwardMetrics: Opt(Empty()),
    memoryDump: Opt(HotplugPvc()),
    containerPath: Opt(Obj({ path: Str(), readOnly: Opt(Bool()) })),
  });

export const Network = () =>
  Obj({
    name: Str(),
    pod: Opt(Obj({ vmNetworkCIDR: Opt(Str()), vmIPv6NetworkCIDR: Opt(Str()) })),
    multus: Opt(Obj({ networkName: Str(), default: Opt(Bool()) })),
    resourceClaim: Opt(Obj({ claimName: Opt(Str()), requestName: Opt(Str()) })),
  });

export const Probe = () =>
  Obj({
    exec: Opt(ExecAction()),
    guestAgentPing: Opt(Empty()),
    httpGet: Opt(HTTPGetAction()),
    tcpSocket: Opt(TCPSocketAction()),
    initialDelaySeconds: Opt(Int32()),
    timeoutSeconds: Opt(Int32()),
    periodSeconds: Opt(Int32()),
    successThreshold: Opt(Int32()),
    failureThreshold: Opt(Int32()),
  });

const SecretSource = () => Obj({ secret: Opt(Obj({ secretName: Str() })) });
const AccessCredential = () =>
  Obj({
    sshPublicKey: Opt(
      Obj({
        source: SecretSource(),
        propagationMethod: Obj({
          configDrive: Opt(Empty()),
          noCloud: Opt(Empty()),
          qemuGuestAgent: Opt(Obj({ users: StrList() })),
        }),
      }),
    ),
    userPassword: Opt(
      Obj({
        source: SecretSource(),
        propagationMethod: Obj({ qemuGuestAgent: Opt(Empty()) }),
      }),
    ),
  });

export const VirtualMachineInstanceSpec = () =>
  Obj({
    priorityClassName: Opt(Str()),
    domain: DomainSpec(),
    nodeSelector: Opt(StringMap()),
    affinity: Opt(Affinity()),
    schedulerName: Opt(Str()),
    serviceAccountName: Opt(Str()),
    tolerations: Opt(Arr(Toleration())),
    topologySpreadConstraints: Opt(Arr(TopologySpreadConstraint(), { mapKeys: ['topologyKey', 'whenUnsatisfiable'] })),
    evictionStrategy: Opt(Str()),
    startStrategy: Opt(Str()),
    terminationGracePeriodSeconds: Opt(Int64()),
    volumes: Opt(Arr(Volume())),
    livenessProbe: Opt(Probe()),
    readinessProbe: Opt(Probe()),
    hostname: Opt(Str()),
    subdomain: Opt(Str()),
    networks: Opt(Arr(Network())),
    dnsPolicy: Opt(Str()),
    dnsConfig: Opt(PodDNSConfig()),
    accessCredentials: Opt(Arr(AccessCredential())),
    architecture: Opt(Str()),
    resourceClaims: Opt(
      Arr(Obj({ name: Str(), resourceClaimName: Opt(Str()), resourceClaimTemplateName: Opt(Str()) }), { mapKeys: ['name'] }),
    ),
    utilityVolumes: Opt(Arr(Obj({ name: Str(), claimName: Str(), type: Opt(Str()) }), { mapKeys: ['name'] })),
  });

const PersistentVolumeClaimInfo = () =>
  Obj({
    claimName: Opt(Str()),
    accessModes: Opt(Arr(Type.String(), 'atomic')),
    volumeMode: Opt(Str()),
    capacity: Opt(QuantityMap()),
    requests: Opt(QuantityMap()),
    preallocated: Opt(Bool()),
    filesystemOverhead: Opt(Str()),
  });

const MigrationStateCommon = {
  node: Opt(Str()),
  pod: Opt(Str()),
  migrationUID: Opt(Str()),
  domainName: Opt(Str()),
  domainNamespace: Opt(Str()),
  syncAddress: Opt(Str()),
  persistentStatePVCName: Opt(Str()),
  selinuxContext: Opt(Str()),
  virtualMachineInstanceUID: Opt(Str()),
};

export const MigrationState = () =>
  Obj({
    startTimestamp: Opt(Time()),
    endTimestamp: Opt(Time()),
    targetNodeDomainReadyTimestamp: Opt(Time()),
    targetNodeDomainDetected: Opt(Bool()),
    targetNodeAddress: Opt(Str()),
    targetDirectMigrationNodePorts: Opt(MapOf(Type.Integer())),
    targetNode: Opt(Str()),
    targetPod: Opt(Str()),
    targetAttachmentPodUID: Opt(Str()),
    sourceNode: Opt(Str()),
    sourcePod: Opt(Str()),
    completed: Opt(Bool()),
    failed: Opt(Bool()),
    abortRequested: Opt(Bool()),
    abortStatus: Opt(Str()),
    failureReason: Opt(Str()),
    migrationUid: Opt(Str()),
    mode: Opt(Str()),
    migrationPolicyName: Opt(Str()),
    migrationConfiguration: Opt(
      Obj({
        allowAutoConverge: Opt(Bool()),
        allowPostCopy: Opt(Bool()),
        allowWorkloadDisruption: Opt(Bool()),
        bandwidthPerMigration: Opt(Quantity()),
        completionTimeoutPerGiB: Opt(Int64()),
        nodeDrainTaintKey: Opt(Str()),
        parallelMigrationsPerCluster: Opt(Type.Integer()),
        parallelOutboundMigrationsPerNode: Opt(Type.Integer()),
        progressTimeout: Opt(Int64()),
        unsafeMigrationOverride: Opt(Bool()),
      }),
    ),
    targetCPUSet: Opt(Arr(Type.Integer())),
    targetNodeTopology: Opt(Str()),
    sourcePersistentStatePVCName: Opt(Str()),
    targetPersistentStatePVCName: Opt(Str()),
    sourceState: Opt(Obj({ ...MigrationStateCommon, nodeSelectors: Opt(StringMap()) })),
    targetState: Opt(
      Obj({
        ...MigrationStateCommon,
        domainReadyTimestamp: Opt(Time()),
        domainDetected: Opt(Bool()),
        nodeAddress: Opt(Str()),
        directMigrationNodePorts: Opt(MapOf(Type.Integer())),
        attachmentPodUID: Opt(Str()),
        cpuSet: Opt(Arr(Type.Integer())),
        nodeTopology: Opt(Str()),
      }),
    ),
    migrationNetworkType: Opt(Str()),
    targetMemoryOverhead: Opt(Quantity()),
  });

const CPUTopology = () => Obj({ cores: Opt(Type.Integer()), sockets: Opt(Type.Integer()), threads: Opt(Type.Integer()) });
const Checksum = () => Obj({ checksum: Opt(Type.Integer()) });

export const VirtualMachineInstanceStatus = () =>
  Obj({
    nodeName: Opt(Str()),
    reason: Opt(Str()),
    conditions: Opt(Arr(Condition())),
    phase: Opt(Str()),
    phaseTransitionTimestamps: Opt(Arr(Obj({ phase: Opt(Str()), phaseTransitionTimestamp: Opt(Time()) }))),
    interfaces: Opt(
      Arr(
        Obj({
          ipAddress: Opt(Str()),
          mac: Opt(Str()),
          name: Opt(Str()),
          ipAddresses: Opt(StrList()),
          podInterfaceName: Opt(Str()),
          interfaceName: Opt(Str()),
          infoSource: Opt(Str()),
          queueCount: Opt(Int32()),
          linkState: Opt(Str()),
        }),
      ),
    ),
    guestOSInfo: Opt(
      Obj({
        name: Opt(Str()),
        kernelRelease: Opt(Str()),
        version: Opt(Str()),
        prettyName: Opt(Str()),
        versionId: Opt(Str()),
        kernelVersion: Opt(Str()),
        machine: Opt(Str()),
        id: Opt(Str()),
      }),
    ),
    migrationState: Opt(MigrationState()),
    migrationMethod: Opt(Str()),
    migrationTransport: Opt(Str()),
    qosClass: Opt(Str()),
    launcherContainerImageVersion: Opt(Str()),
    evacuationNodeName: Opt(Str()),
    activePods: Opt(StringMap()),
    volumeStatus: Opt(
      Arr(
        Obj({
          name: Str(),
          target: Str(),
          phase: Opt(Str()),
          reason: Opt(Str()),
          message: Opt(Str()),
          persistentVolumeClaimInfo: Opt(PersistentVolumeClaimInfo()),
          hotplugVolume: Opt(Obj({ attachPodName: Opt(Str()), attachPodUID: Opt(Str()) })),
          size: Opt(Int64()),
          memoryDumpVolume: Opt(
            Obj({ startTimestamp: Opt(Time()), endTimestamp: Opt(Time()), claimName: Opt(Str()), targetFileName: Opt(Str()) }),
          ),
          containerDiskVolume: Opt(Checksum()),
        }),
      ),
    ),
    kernelBootStatus: Opt(Obj({ kernelInfo: Opt(Checksum()), initrdInfo: Opt(Checksum()) })),
    fsFreezeStatus: Opt(Str()),
    topologyHints: Opt(Obj({ tscFrequency: Opt(Int64()) })),
    virtualMachineRevisionName: Opt(Str()),
    runtimeUser: Opt(Int64()),
    VSOCKCID: Opt(Type.Integer()),
    selinuxContext: Opt(Str()),
    machine: Opt(Obj({ type: Opt(Str()) })),
    currentCPUTopology: Opt(CPUTopology()),
    memory: Opt(
      Obj({
        guestAtBoot: Opt(Quantity()),
        guestCurrent: Opt(Quantity()),
        guestRequested: Opt(Quantity()),
        memoryOverhead: Opt(Quantity()),
      }),
    ),
    migratedVolumes: Opt(
      Arr(
        Obj({
          volumeName: Str(),
          sourcePVCInfo: Opt(PersistentVolumeClaimInfo()),
          destinationPVCInfo: Opt(PersistentVolumeClaimInfo()),
        }),
      ),
    ),
    changedBlockTracking: Opt(Obj({ state: Str(), backupStatus: Opt(Obj({ backupName: Opt(Str()), completed: Opt(Bool()) })) })),
  });
