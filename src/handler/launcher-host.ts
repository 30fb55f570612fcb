// What virt-handler does on the host for a launcher pod: the device nodes QEMU
// opens, the pod network, the image mounts, and the CPU class of an emulated
// guest. Each step reaches into the pod's containers through their processes.
import { existsSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';
import { NON_ROOT_UID } from '../api/constants.ts';
import type { VirtualMachineInstance } from '../api/types.ts';
import { computeStatus, fileTreeMountPath, OVMF, POD_PATHS } from '../contract/launcher-pod.ts';
import type { NodeContext, VolumePaths } from '../contract/launcher-protocol.ts';
import { allowCharDevices, makePodCpuIdle, type CharDevice } from './cgroup.ts';
import { checkClaimImages, claimLayout, prepareImageVolumes, releaseImageVolumes, type Runner } from './disks.ts';
import { BRIDGE, networkScript, parsePodInterface, planPodNetwork, TAP, type NetworkPlan } from './network.ts';
import { containerIdOf, containerPid, parentPid, PROC } from './proc.ts';

const TUN_DEVICE: CharDevice = { path: '/dev/net/tun', major: 10, minor: 200 };
const KVM_DEVICE: CharDevice = { path: '/dev/kvm', major: 10, minor: 232 };

export interface PreparedLauncher {
  context: NodeContext;
  network: NetworkPlan;
}

/** The host side of a launcher, as the executor uses it (a stand-in in tests). */
export interface LauncherHost {
  /** Wires the pod for the guest (again where a step is already done) and returns what the launcher's sync carries. */
  prepare(vmi: VirtualMachineInstance, pod: V1Pod, network: NetworkPlan | undefined): Promise<PreparedLauncher>;
  releaseImages(podUid: string): Promise<void>;
  lowerCpuPriority(pod: V1Pod): void;
}

export interface NodeLauncherHostOptions {
  run: Runner;
  /** Whether guests use KVM; rejects when the node can run them in neither mode. */
  useKvm: () => Promise<boolean>;
  hugepageSizes: () => string[];
  /** The KubeVirt CR's diskVerification memory limit, passed on to the launcher. */
  diskVerificationMemoryLimitBytes: () => number | undefined;
}

export class NodeLauncherHost implements LauncherHost {
  readonly #run: Runner;
  readonly #useKvm: () => Promise<boolean>;
  readonly #hugepageSizes: () => string[];
  readonly #diskVerificationMemoryLimitBytes: () => number | undefined;

  constructor(options: NodeLauncherHostOptions) {
    this.#run = options.run;
    this.#useKvm = options.useKvm;
    this.#hugepageSizes = options.hugepageSizes;
    this.#diskVerificationMemoryLimitBytes = options.diskVerificationMemoryLimitBytes;
  }

  async prepare(vmi: VirtualMachineInstance, pod: V1Pod, network: NetworkPlan | undefined): Promise<PreparedLauncher> {
    const kvm = await this.#useKvm();
    const pid = computePid(pod);
    checkClaimImages(vmi, `${PROC}/${pid}/root`);
    const paths = podVolumePaths(vmi);
    const blockDevices = Object.values(paths.claims ?? {}).flatMap((c) => (c.mode === 'Block' ? [c.path] : []));
    // Independent steps, each mostly waiting for processes it starts: on a busy node, one after
    // the other they added up to seconds per guest.
    const [, wired, images] = await Promise.all([
      this.#ensureDevices(pid, kvm, blockDevices),
      network ?? this.#wireNetwork(vmi, pid),
      prepareImageVolumes(vmi, pod, this.#run, `${PROC}/${pid}/root`),
    ]);
    const context: NodeContext = {
      socketDir: POD_PATHS.sockets,
      kvm,
      hugepageSizes: this.#hugepageSizes(),
      firmware: OVMF,
      interfaces: wired.attachments,
      volumes: { ...images, ...paths },
      smbios: { manufacturer: 'KubeVirt', product: 'None', family: 'KubeVirt' },
      dhcp: wired.dhcp,
    };
    const limit = this.#diskVerificationMemoryLimitBytes();
    if (limit !== undefined) context.diskVerificationMemoryLimitBytes = limit;
    return { context, network: wired };
  }

  releaseImages(podUid: string): Promise<void> {
    return releaseImageVolumes(podUid, this.#run);
  }

  lowerCpuPriority(pod: V1Pod): void {
    const pid = computePid(pod);
    makePodCpuIdle(pid, parentPid(pid));
  }

  /**
   * Device nodes QEMU opens inside the compute container (no device plugin: we make them), and
   * the claims' block devices, which the runtime hands over with the host node's owner: QEMU runs
   * as qemu, so they become qemu's, as upstream makes them.
   */
  async #ensureDevices(pid: number, kvm: boolean, blockDevices: string[]) {
    const nodes = kvm ? [TUN_DEVICE, KVM_DEVICE] : [TUN_DEVICE];
    allowCharDevices(pid, parentPid(pid), nodes);
    const script = [
      ...nodes.map(
        ({ path, major, minor }) =>
          `mkdir -p ${path.slice(0, path.lastIndexOf('/'))}; [ -c ${path} ] || mknod -m 0666 ${path} c ${major} ${minor}`,
      ),
      // -h: a link put in a device's place is changed itself, never what it points at.
      ...blockDevices.map((path) => `if [ -b '${path}' ]; then chown -h ${NON_ROOT_UID}:${NON_ROOT_UID} '${path}' || exit 1; fi`),
    ].join('; ');
    // Run inside the container's own root, so nothing there can point us at a host path.
    await this.#run(['nsenter', '-t', String(pid), '-m', '-r', '--', '/bin/busybox', 'sh', '-c', script]);
  }

  async #wireNetwork(vmi: VirtualMachineInstance, pid: number): Promise<NetworkPlan> {
    const inPod = (argv: string[]) => this.#run(['nsenter', `--net=${PROC}/${pid}/ns/net`, '--', ...argv]);
    // One process for all the questions and one script for the plan: under load, each spawn costs
    // more than the command. Tools by full path, as PATH finds them here: busybox's sh would prefer
    // its own smaller applets.
    const ip = toolPath('ip');
    const [built, addresses, routes] = (
      await inPod([
        'sh',
        '-c',
        `${ip} link show ${BRIDGE} >/dev/null 2>&1 && echo built || echo new; ${ip} -j addr show dev eth0; ${ip} -j route show default`,
      ])
    ).split('\n');
    const plan = planPodNetwork(vmi, parsePodInterface(addresses, routes));
    if (built !== 'built') {
      await inPod(['sh', '-ec', networkScript(plan.commands, toolPath)]).catch(async (error) => {
        // A half-built network would be taken for a finished one next time.
        await inPod(['sh', '-c', `${ip} link del ${TAP}; ${ip} link del ${BRIDGE}`]).catch(() => undefined);
        throw error;
      });
    }
    return plan;
  }
}

/** Where the pod has each claim (its mount or its device) and each file tree the guest gets as a disk. */
export function podVolumePaths(vmi: VirtualMachineInstance): Pick<VolumePaths, 'claims' | 'fileTrees'> {
  const claims: NonNullable<VolumePaths['claims']> = {};
  const fileTrees: Record<string, string> = {};
  for (const volume of vmi.spec.volumes ?? []) {
    const claim = claimLayout(vmi, volume);
    if (claim) claims[volume.name] = claim;
    const tree = fileTreeMountPath(volume);
    if (tree) fileTrees[volume.name] = tree;
  }
  return { claims, fileTrees };
}

const toolPath = (tool: string) =>
  (process.env.PATH ?? '')
    .split(':')
    .map((dir) => `${dir}/${tool}`)
    .find((path) => existsSync(path)) ?? tool;

function computePid(pod: V1Pod): number {
  const id = containerIdOf(computeStatus(pod)?.containerID);
  const pid = id ? containerPid(id) : undefined;
  if (!id || !pid) throw new Error(`the compute container of ${pod.metadata?.name} is not running`);
  return pid;
}
