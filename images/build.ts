// Builds kubevirt-ts's OCI images from this repo and the host's Debian
// packages, and pushes them to the local registry. Usage:
//   node images/build.ts [--registry registry:5000] [image ...]
// With no image names it builds all of them but KWOK's (hack/cluster/kwok.ts builds that one).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { CACHE, layerFromDir, pushImage, type LayerBlob } from './oci.ts';
import { gitInfo } from '../src/lib/version.ts';
import { NON_ROOT_UID } from '../src/api/constants.ts';
import { PROCESS_NAMES, type ProcessName } from '../src/contract/process-names.ts';
import { buildConsole } from '../hack/build-console.ts';

const REPO = join(import.meta.dirname, '..');
const STAGING = join(CACHE, 'images', 'staging');
export const TAG = 'devel';

/**
 * Stages a layer's tree with `fill` and packs it. A layer given a `key` (a hash
 * of everything it is built from) is taken from the cache when that key was seen.
 */
function stage(name: string, fill: (root: string) => void, key?: string, owner = 0): LayerBlob {
  const memo = key ? join(CACHE, 'images', `layer-${name}-${key}.json`) : undefined;
  if (memo && existsSync(memo)) {
    const cached = JSON.parse(readFileSync(memo, 'utf8')) as LayerBlob;
    if (existsSync(join(CACHE, 'oci', 'blobs', cached.digest.slice('sha256:'.length)))) return cached;
  }
  const root = join(STAGING, name);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  fill(root);
  const layer = layerFromDir(root, owner);
  if (memo) writeFileSync(memo, JSON.stringify(layer));
  return layer;
}

function hashOf(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex').slice(0, 16);
}

function copyInto(root: string, file: string, as = file) {
  const target = join(root, as);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(realpathSync(file), target);
  chmodSync(target, 0o755);
}

/** A binary plus every shared library it loads, at their host paths. */
function copyWithLibraries(root: string, binary: string, as = binary) {
  copyInto(root, binary, as);
  const ldd = execFileSync('ldd', [binary], { encoding: 'utf8' });
  for (const match of ldd.matchAll(/(\/\S+\.so[^\s]*)/g)) {
    const lib = match[1];
    if (!existsSync(join(root, lib))) copyInto(root, lib);
  }
}

const compilePause = (out: string) => execFileSync('gcc', ['-static', '-O2', '-s', '-o', out, join(REPO, 'images', 'pause', 'pause.c')]);

let pauseLayer: LayerBlob | undefined;
function pause(): LayerBlob {
  return (pauseLayer ??= stage('pause', (root) => compilePause(join(root, 'pause'))));
}

let nodeToolsLayer: LayerBlob | undefined;
/**
 * What virt-handler runs inside launcher pods: iproute2 (bridges, taps,
 * neighbours), iptables (the masquerade NAT) and nsenter, ahead of busybox's
 * smaller applets on PATH.
 */
function nodeTools(): LayerBlob {
  return (nodeToolsLayer ??= stage(
    'node-tools',
    (root) => {
      copyWithLibraries(root, '/usr/sbin/ip', '/usr/local/bin/ip');
      copyWithLibraries(root, '/usr/bin/nsenter', '/usr/local/bin/nsenter');
      copyWithLibraries(root, '/usr/sbin/xtables-nft-multi', '/usr/local/bin/xtables-nft-multi');
      for (const name of ['iptables', 'iptables-save', 'iptables-restore'])
        symlinkSync('xtables-nft-multi', join(root, 'usr/local/bin', name));
      const modules = '/usr/lib/x86_64-linux-gnu/xtables';
      for (const module of readdirSync(modules)) copyWithLibraries(root, join(modules, module));
    },
    hashOf(readFileSync(import.meta.filename), String(statSync('/usr/sbin/xtables-nft-multi').size), String(statSync('/usr/sbin/ip').size)),
  ));
}

/**
 * GNU tools (bash, coreutils, findutils, procps, grep, awk, lsblk) from the
 * host, in /usr/bin and over busybox's links in /bin: upstream's tests run them
 * in the compute container and in vm-killer pods with options busybox lacks
 * (`stat --printf`, `stat -f -c %T`, `ps -LC … -o`, `pkill -e`, `tail -v`,
 * `ls -Z`, `sleep infinity`, bash's `<(…)`). /bin/sh is bash too.
 */
export const GNU_TOOLS = [
  'bash',
  ...['stat', 'ls', 'df', 'du', 'tail', 'head', 'id', 'touch', 'cat', 'mv', 'rm', 'cp', 'sort', 'uniq', 'cut', 'wc', 'tr', 'tee'],
  ...['sleep', 'date', 'mkdir', 'ln', 'chmod', 'chown', 'env', 'timeout', 'dd', 'readlink', 'basename', 'dirname', 'seq'],
  ...['realpath', 'truncate', 'find', 'xargs', 'ps', 'pgrep', 'pkill', 'grep', 'lsblk'],
];

let gnuToolsLayer: LayerBlob | undefined;
function gnuTools(): LayerBlob {
  return (gnuToolsLayer ??= stage(
    'gnu-tools',
    (root) => {
      mkdirSync(join(root, 'bin'), { recursive: true });
      const tools: [string, string][] = [
        ...GNU_TOOLS.map((name): [string, string] => [name, `/usr/bin/${name}`]),
        ['awk', '/usr/bin/mawk'],
      ];
      for (const [name, host] of tools) {
        copyWithLibraries(root, host, `/usr/bin/${name}`);
        // A tool called by its /bin path (/bin/bash, /bin/ls, /bin/tail) is GNU's too.
        rmSync(join(root, 'bin', name), { force: true });
        symlinkSync(`/usr/bin/${name}`, join(root, 'bin', name));
      }
      // busybox's sh runs its own applets before anything on PATH (Debian builds it as a
      // "standalone shell"), so `sh -c 'stat …'` would still get busybox's: sh is bash here.
      rmSync(join(root, 'bin', 'sh'), { force: true });
      symlinkSync('bash', join(root, 'bin', 'sh'));
    },
    hashOf(readFileSync(import.meta.filename), ...GNU_TOOLS.map((name) => String(statSync(`/usr/bin/${name}`).size))),
  ));
}

let vmKillerLayer: LayerBlob | undefined;
/**
 * What upstream's tests run in vm-killer pods beyond the GNU tools: curl, tar,
 * which, qemu-img, nsenter, mkfs.ext4 from the host, and a busybox-nc stand-in
 * for nmap's ncat (images/vm-killer/ncat; the host has no ncat).
 */
function vmKillerTools(): LayerBlob {
  return (vmKillerLayer ??= stage(
    'vm-killer',
    (root) => {
      for (const binary of ['/usr/bin/curl', '/usr/bin/tar', '/usr/bin/qemu-img', '/usr/bin/nsenter', '/usr/sbin/mke2fs'])
        copyWithLibraries(root, binary);
      symlinkSync('mke2fs', join(root, 'usr/sbin/mkfs.ext4'));
      copyInto(root, '/usr/bin/which', '/usr/bin/which');
      copyInto(root, join(REPO, 'images', 'vm-killer', 'ncat'), '/usr/bin/ncat');
    },
    hashOf(readFileSync(import.meta.filename), readFileSync(join(REPO, 'images', 'vm-killer', 'ncat'))),
  ));
}

let holderLayer: LayerBlob | undefined;
/**
 * The process that keeps a containerDisk or kernel-boot container alive (their
 * images hold only files): the static pause binary, which the launcher pod's
 * init container copies into a volume those containers run it from.
 */
function containerDiskHolder(): LayerBlob {
  return (holderLayer ??= stage('container-disk-holder', (root) => {
    mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
    compilePause(join(root, 'usr', 'bin', 'container-disk'));
  }));
}

let baseLayer: LayerBlob | undefined;
/** busybox, the Node 24 runtime from node_modules (stripped), and the accounts our components run as. */
function base(): LayerBlob {
  return (baseLayer ??= stage(
    'base',
    (root) => {
      copyInto(root, '/bin/busybox', '/bin/busybox');
      for (const applet of [
        'mknod',
        'sysctl',
        'sh',
        'ls',
        'cat',
        'sleep',
        'mkdir',
        'rm',
        'cp',
        'mv',
        'ln',
        'ps',
        'kill',
        'env',
        'echo',
        'test',
        'nc',
        'ip',
        'chown',
        'chmod',
        'stat',
        'mount',
        'umount',
        'df',
        'du',
        'find',
        'grep',
        'sed',
        'head',
        'tail',
        'tar',
        'true',
        'false',
        'id',
        'hostname',
        'uname',
        'date',
        'touch',
        'tee',
        'vi',
      ]) {
        symlinkSync('busybox', join(root, 'bin', applet));
      }
      const node = realpathSync(join(REPO, 'node_modules', '.bin', 'node'));
      copyWithLibraries(root, node, '/usr/local/bin/node');
      execFileSync('strip', ['--strip-debug', join(root, 'usr/local/bin/node')]);
      for (const name of PROCESS_NAMES) symlinkSync('node', join(root, 'usr/local/bin', name));
      mkdirSync(join(root, 'etc'), { recursive: true });
      writeFileSync(
        join(root, 'etc', 'passwd'),
        'root:x:0:0:root:/root:/bin/sh\nqemu:x:107:107:qemu:/home/qemu:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
      );
      writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nqemu:x:107:\nkvm:x:108:qemu\nnogroup:x:65534:\n');
      writeFileSync(join(root, 'etc', 'nsswitch.conf'), 'hosts: files dns\n');
      if (existsSync('/etc/ssl/certs/ca-certificates.crt')) copyInto(root, '/etc/ssl/certs/ca-certificates.crt');
      for (const dir of ['tmp', 'var/run', 'home/qemu', 'root']) mkdirSync(join(root, dir), { recursive: true });
      chmodSync(join(root, 'tmp'), 0o1777);
    },
    hashOf(readFileSync(import.meta.filename), process.version, String(statSync('/bin/busybox').size), PROCESS_NAMES.join()),
  ));
}

let depsLayer: LayerBlob | undefined;
/** The production npm dependencies; rebuilt only when package-lock.json changes. */
function deps(): LayerBlob {
  return (depsLayer ??= stage(
    'deps',
    (root) => {
      const app = join(root, 'app');
      mkdirSync(app, { recursive: true });
      copyFileSync(join(REPO, 'package.json'), join(app, 'package.json'));
      copyFileSync(join(REPO, 'package-lock.json'), join(app, 'package-lock.json'));
      execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', '--prefer-offline'], {
        cwd: app,
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      rmSync(join(app, 'package.json'));
      rmSync(join(app, 'package-lock.json'));
    },
    hashOf(readFileSync(join(REPO, 'package-lock.json'))),
  ));
}

/**
 * The programs the images run, each bundled to one file at its own path with .js (the
 * components' manifests and the launcher's entrypoint name them so).
 */
const PROGRAMS = [
  'src/virt-api/main.ts',
  'src/controller/main.ts',
  'src/handler/main.ts',
  'src/operator/main.ts',
  'src/cdi/main.ts',
  'src/cdi/importer/main.ts',
  'src/console/main.ts',
  'src/launcher/main.ts',
];

/** The project's own programs, bundled (hack/bundle.ts): the only layer a code change rebuilds. */
function app(): LayerBlob {
  return stage('app', (root) => {
    const dir = join(root, 'app');
    mkdirSync(dir, { recursive: true });
    execFileSync(process.execPath, [join(REPO, 'hack', 'bundle.ts'), dir, ...PROGRAMS], { stdio: 'inherit' });
    cpSync(join(REPO, 'manifests'), join(dir, 'manifests'), { recursive: true });
    buildConsole(join(dir, 'console-web'));
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', ...gitInfo(REPO) }));
  });
}

export const NBDKIT = '/usr/bin/nbdkit';
/** Where Debian's nbdkit looks for its plugins (compiled in), so the plugin keeps its host path. */
export const NBDKIT_CURL_PLUGIN = '/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-curl-plugin.so';

/**
 * nbdkit and its curl plugin, each with the libraries it loads (the plugin's
 * libcurl-gnutls and what that needs), which serve an http(s) source to
 * qemu-img in the DataVolume importer. No filter: the importer uses none.
 */
export function copyNbdkit(root: string): void {
  copyWithLibraries(root, NBDKIT);
  copyWithLibraries(root, NBDKIT_CURL_PLUGIN);
}

let qemuLayer: LayerBlob | undefined;
/**
 * Debian's QEMU with its firmware (SeaBIOS, OVMF, iPXE ROMs), the tools the
 * launcher runs (qemu-img, genisoimage), nbdkit with its curl plugin and xz
 * (the DataVolume importer's), plus a kernel for the KVM probe.
 */
function qemu(): LayerBlob {
  return (qemuLayer ??= stage(
    'qemu',
    (root) => {
      for (const binary of ['/usr/bin/qemu-system-x86_64', '/usr/bin/qemu-img', '/usr/bin/genisoimage', '/usr/bin/xz'])
        copyWithLibraries(root, binary);
      const modules = '/usr/lib/x86_64-linux-gnu/qemu';
      for (const module of ['accel-tcg-x86_64.so', 'accel-tcg-i386.so'])
        if (existsSync(join(modules, module))) copyWithLibraries(root, join(modules, module));
      copyNbdkit(root);
      for (const dir of ['/usr/share/qemu', '/usr/share/seabios', '/usr/share/OVMF', '/usr/share/ovmf', '/usr/lib/ipxe/qemu']) {
        if (existsSync(dir)) cpSync(dir, join(root, dir), { recursive: true, dereference: false, verbatimSymlinks: true });
      }
      copyInto(root, join(guest(), 'vmlinuz'), '/usr/share/kubevirt-ts/probe-vmlinuz');
    },
    hashOf(
      readFileSync(import.meta.filename),
      execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }),
      execFileSync(NBDKIT, ['--version'], { encoding: 'utf8' }),
    ),
  ));
}

/** Test-only servers used by the cluster tests, and the test guest's disk for the image server to serve (qcow2, and raw compressed). */
function testServers(): LayerBlob {
  return stage('test-servers', (root) => {
    const dir = join(root, 'app', 'test');
    mkdirSync(dir, { recursive: true });
    cpSync(join(REPO, 'test', 'e2e', 'servers'), join(dir, 'servers'), { recursive: true });
    const images = join(root, 'srv', 'images');
    mkdirSync(images, { recursive: true });
    copyFileSync(join(guest(), 'disk.qcow2'), join(images, 'disk.qcow2'));
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', join(images, 'disk.qcow2'), join(images, 'disk.img')]);
    execFileSync('xz', ['-T0', '-1', '-k', join(images, 'disk.img')]);
    execFileSync('gzip', ['-1', join(images, 'disk.img')]);
  });
}

let guestDir: string | undefined;
/** The test guest (images/guest/build.sh), built from Debian packages and cached. */
function guest(): string {
  return (guestDir ??= execFileSync('bash', [join(REPO, 'images', 'guest', 'build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim());
}

/**
 * How the guest published under an image name behaves at its console, as
 * upstream's image of that name does (images/guest/build.sh builds one disk
 * per flavour): `alpine` lets root in with no password at a `host:~# ` prompt,
 * `fedora` takes fedora/fedora at `[fedora@host ~]$ ` with sudo, `cirros`
 * takes cirros/gocubsgo after cirros's banner, with sudo.
 */
export type GuestFlavour = 'cirros' | 'alpine' | 'fedora';
export function guestFlavour(image: string): GuestFlavour {
  const name = image.slice(image.lastIndexOf('/') + 1);
  if (name.startsWith('alpine')) return 'alpine';
  if (name.startsWith('fedora')) return 'fedora';
  return 'cirros';
}

/** The test guest's files of a flavour: disk.qcow2 and initramfs.gz (vmlinuz is shared). */
const flavourDir = (flavour: GuestFlavour) => join(guest(), flavour);

/** The test guest as a containerDisk: its boot disk at `<dir>/<file>` (upstream's images use /disk/). */
const containerDiskLayers = new Map<string, LayerBlob>();
function containerDisk(flavour: GuestFlavour, dir = 'disk', file = 'disk.qcow2'): LayerBlob {
  const key = `${flavour}:${dir}/${file}`;
  let layer = containerDiskLayers.get(key);
  if (!layer) {
    // As upstream's containerDisk images carry theirs: the launcher's (qemu's) to read, no one's to write.
    layer = stage(
      `container-disk-${flavour}-${dir}`,
      (root) => {
        mkdirSync(join(root, dir));
        copyFileSync(join(flavourDir(flavour), 'disk.qcow2'), join(root, dir, file));
        chmodSync(join(root, dir, file), 0o440);
      },
      undefined,
      NON_ROOT_UID,
    );
    containerDiskLayers.set(key, layer);
  }
  return layer;
}

/** The test guest's kernel and initramfs, under the names upstream's kernel-boot example uses too. */
const kernelBootLayers = new Map<GuestFlavour, LayerBlob>();
function kernelBoot(flavour: GuestFlavour): LayerBlob {
  let layer = kernelBootLayers.get(flavour);
  if (!layer) {
    layer = stage(`kernel-boot-${flavour}`, (root) => {
      mkdirSync(join(root, 'boot'));
      for (const [from, to] of [
        ['vmlinuz', 'vmlinuz'],
        ['initramfs.gz', 'initramfs.gz'],
        ['vmlinuz', 'vmlinuz-virt'],
        ['initramfs.gz', 'initramfs-virt'],
      ]) {
        copyFileSync(from === 'vmlinuz' ? join(guest(), from) : join(flavourDir(flavour), from), join(root, 'boot', to));
      }
    });
    kernelBootLayers.set(flavour, layer);
  }
  return layer;
}

/**
 * A stand-in for upstream's virtio-win containerDisk: an ISO at /disk/virtio-win.iso with the
 * layout its tests look for (the licence file and the guest-agent folder at the top), but no
 * Windows drivers, which nothing here could use or build.
 */
function virtioWinContainerDisk(): LayerBlob {
  return stage('virtio-win-container-disk', (root) => {
    const content = join(root, 'iso');
    mkdirSync(join(content, 'guest-agent'), { recursive: true });
    writeFileSync(join(content, 'virtio-win_license.txt'), 'kubevirt-ts test kit: a stand-in for the virtio-win ISO, without drivers.\n');
    writeFileSync(join(content, 'guest-agent', 'README.txt'), 'The Windows guest agent installers would be here.\n');
    mkdirSync(join(root, 'disk'));
    execFileSync('genisoimage', ['-quiet', '-V', 'virtio-win', '-J', '-r', '-o', join(root, 'disk', 'virtio-win.iso'), content]);
    rmSync(content, { recursive: true });
  });
}

/** A containerDisk image whose disk is a symbolic link to a host file: virt-handler must refuse it. */
function evilContainerDisk(): LayerBlob {
  return stage('evil-container-disk', (root) => {
    mkdirSync(join(root, 'disk'));
    symlinkSync('/etc/shadow', join(root, 'disk', 'disk.qcow2'));
  });
}

const goProgramLayers = new Map<string, LayerBlob>();
/** An upstream program built from the Go module that pins it under hack/cluster (build-go.sh), in /usr/local/bin. */
function goProgram(module: string, program: string): LayerBlob {
  let layer = goProgramLayers.get(program);
  if (!layer) {
    layer = stage(program, (root) => {
      const bin = execFileSync('bash', [join(REPO, 'hack', 'cluster', 'build-go.sh'), module], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }).trim();
      copyInto(root, join(bin, program), `/usr/local/bin/${program}`);
    });
    goProgramLayers.set(program, layer);
  }
  return layer;
}

/**
 * KWOK's default fast stages, as its Go module (the version hack/cluster/kwok pins) ships them, in
 * one config file: a simulated node is Ready at once and keeps its lease, and a pod bound to it is
 * Running and Ready at once, and gone once deleted.
 */
function kwokStages(): LayerBlob {
  return stage('kwok-stages', (root) => {
    let download: string;
    try {
      download = execFileSync('go', ['mod', 'download', '-json', 'sigs.k8s.io/kwok'], {
        cwd: join(REPO, 'hack', 'cluster', 'kwok'),
        encoding: 'utf8',
      });
    } catch (error) {
      throw new Error(`kwok image: KWOK's stages come from its Go module, which \`go mod download\` fetches: ${(error as Error).message}`);
    }
    const stages = join((JSON.parse(download) as { Dir: string }).Dir, 'kustomize', 'stage');
    const files = [
      'node/fast/node-initialize.yaml',
      'node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
      'pod/fast/pod-ready.yaml',
      'pod/fast/pod-complete.yaml',
      'pod/fast/pod-delete.yaml',
    ];
    mkdirSync(join(root, 'etc', 'kwok'), { recursive: true });
    writeFileSync(join(root, 'etc', 'kwok', 'stages.yaml'), files.map((f) => readFileSync(join(stages, f), 'utf8')).join('\n---\n'));
  });
}

/** Where the test guest is published: our name, and the names upstream's examples use. */
export const CONTAINER_DISK_NAMES = [
  'kubevirt-ts/test-guest-container-disk',
  'kubevirt/cirros-container-disk-demo',
  'kubevirt/alpine-container-disk-demo',
  // libvmifact.NewAlpineWithTestTooling: many of upstream's functional tests boot it.
  'kubevirt/alpine-with-test-tooling-container-disk',
  'kubevirt/fedora-cloud-container-disk-demo',
  'kubevirt/fedora-with-test-tooling-container-disk',
];
export const KERNEL_BOOT_NAMES = ['kubevirt-ts/test-guest-kernel-boot', 'kubevirt/alpine-ext-kernel-boot-demo'];
/** upstream's "custom location" cirros image: its disk is /custom-disk/downloaded (tests set containerDisk.path). */
export const CUSTOM_LOCATION_NAME = 'kubevirt/cirros-custom-container-disk-demo';
/** upstream's virtio-win image (libvmi's ContainerDiskVirtio), which its tests attach as a SATA CD-ROM. */
export const VIRTIO_WIN_NAME = 'kubevirt/virtio-container-disk';

const NODE_ENV = ['PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', 'NODE_ENV=production'];

export const IMAGES: Record<string, (registry: string, push: boolean) => string> = {
  pause: (registry, push) => pushImage(`${registry}/kubevirt-ts/pause:${TAG}`, [pause()], { Entrypoint: ['/pause'] }, push),
  'virt-ts': (registry, push) =>
    pushImage(`${registry}/kubevirt-ts/virt-ts:${TAG}`, [base(), deps(), app()], { Env: NODE_ENV, WorkingDir: '/app' }, push),
  'virt-launcher': (registry, push) =>
    pushImage(
      `${registry}/kubevirt-ts/virt-launcher:${TAG}`,
      [base(), gnuTools(), qemu(), nodeTools(), containerDiskHolder(), deps(), app()],
      {
        Env: NODE_ENV,
        WorkingDir: '/app',
        Entrypoint: ['virt-launcher' satisfies ProcessName, '/app/src/launcher/main.js'],
        User: '107:107',
      },
      push,
    ),
  // upstream's utility image for helper pods (kill processes on the node, touch files on claims, connectivity jobs).
  'vm-killer': (registry, push) =>
    pushImage(`${registry}/kubevirt/vm-killer:${TAG}`, [base(), gnuTools(), vmKillerTools()], { Env: NODE_ENV, User: '1001' }, push),
  // The local cluster's storage; busybox's sh, mkdir and rm (the base layer) run its helper pods.
  'local-path-provisioner': (registry, push) =>
    pushImage(
      `${registry}/kubevirt-ts/local-path-provisioner:${TAG}`,
      [base(), goProgram('local-path', 'local-path-provisioner')],
      { Env: NODE_ENV },
      push,
    ),
  // The local cluster's DNS (kube-system/kube-dns); a static program, alone in its image.
  coredns: (registry, push) =>
    pushImage(
      `${registry}/kubevirt-ts/coredns:${TAG}`,
      [goProgram('coredns', 'coredns')],
      { Entrypoint: ['/usr/local/bin/coredns'] },
      push,
    ),
  // The local cluster's Prometheus (hack/cluster/prometheus.ts), without its web UI (the API
  // answers queries); a static program, alone in its image.
  prometheus: (registry, push) =>
    pushImage(
      `${registry}/kubevirt-ts/prometheus:${TAG}`,
      [goProgram('prometheus', 'prometheus')],
      { Entrypoint: ['/usr/local/bin/prometheus'], User: '65534:65534' },
      push,
    ),
  // The local cluster's resource metrics API; a static program, alone in its image.
  'metrics-server': (registry, push) =>
    pushImage(
      `${registry}/kubevirt-ts/metrics-server:${TAG}`,
      [goProgram('metrics-server', 'metrics-server')],
      { Entrypoint: ['/usr/local/bin/metrics-server'] },
      push,
    ),
  // Simulated nodes for the scale benchmark (hack/cluster/kwok.ts); a static program, with its stages.
  kwok: (registry, push) =>
    pushImage(
      `${registry}/kubevirt-ts/kwok:${TAG}`,
      [goProgram('kwok', 'kwok'), kwokStages()],
      { Entrypoint: ['/usr/local/bin/kwok', '--config=/etc/kwok/stages.yaml'], User: '65534:65534' },
      push,
    ),
  'test-guest': (registry, push) => {
    let digest = '';
    for (const name of CONTAINER_DISK_NAMES)
      digest = pushImage(`${registry}/${name}:${TAG}`, [containerDisk(guestFlavour(name))], {}, push);
    pushImage(`${registry}/${CUSTOM_LOCATION_NAME}:${TAG}`, [containerDisk('cirros', 'custom-disk', 'downloaded')], {}, push);
    pushImage(`${registry}/${VIRTIO_WIN_NAME}:${TAG}`, [virtioWinContainerDisk()], {}, push);
    // upstream's kernel-boot demo carries its disk too.
    for (const name of KERNEL_BOOT_NAMES) {
      const flavour = guestFlavour(name);
      pushImage(
        `${registry}/${name}:${TAG}`,
        name.startsWith('kubevirt/') ? [kernelBoot(flavour), containerDisk(flavour)] : [kernelBoot(flavour)],
        {},
        push,
      );
    }
    return digest;
  },
  'e2e-servers': (registry, push) => {
    pushImage(`${registry}/kubevirt-ts/evil-container-disk:${TAG}`, [evilContainerDisk()], {}, push);
    return pushImage(`${registry}/kubevirt-ts/e2e-servers:${TAG}`, [base(), testServers()], { Env: NODE_ENV, WorkingDir: '/app' }, push);
  },
};

if (import.meta.main) {
  const args = process.argv.slice(2);
  // --no-push writes the OCI layouts under the cache only, for tests that run without a registry.
  const push = !args.includes('--no-push');
  if (!push) args.splice(args.indexOf('--no-push'), 1);
  let registry = 'registry:5000';
  const at = args.indexOf('--registry');
  if (at >= 0) registry = args.splice(at, 2)[1];
  // KWOK's is built when asked for by name: hack/cluster/kwok.ts does, when a benchmark adds fake nodes.
  const names = args.length ? args : Object.keys(IMAGES).filter((name) => name !== 'kwok');
  for (const name of names) {
    const build = IMAGES[name];
    if (!build) throw new Error(`unknown image ${name}; known: ${Object.keys(IMAGES).join(', ')}`);
    const started = Date.now();
    const digest = build(registry, push);
    console.error(`image ${name}: ${push ? 'pushed' : 'wrote'} ${digest} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
}
