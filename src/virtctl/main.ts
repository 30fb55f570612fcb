// virtctl: upstream's commands, flags and wire format, so scripts written for
// upstream's virtctl work with ours and upstream's works against kubevirt-ts.
// It ships as one bundle (hack/build-virtctl.ts) and starts like a compiled
// program: what only some commands need (streams and ws, image-upload, yaml,
// ssh's child process) is imported by those commands.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { VirtualMachine, VirtualMachineInstance, VirtualMachineInstanceReplicaSet } from '../api/types.ts';
import { versionInfo, type VersionInfo } from '../lib/version.ts';
import {
  createVm,
  exposeService,
  parsePort,
  parseScpArgs,
  parseSshTarget,
  parseTarget,
  UsageError,
  withHint,
  type Exposable,
  type ForwardedPort,
  type Target,
} from './args.ts';
import { ApiError } from '../lib/raw-request.ts';
import { Cluster, SUBRESOURCES, vmiPath, vmPath, type ConnectionFlags } from './client.ts';

/** This program, for ssh's ProxyCommand: bin/virtctl names itself; else this Node.js running this file. */
const SELF = process.env.VIRTCTL_BIN ? [process.env.VIRTCTL_BIN] : [process.execPath, resolve(process.argv[1])];

const streams = () => import('./streams.ts');
const yaml = () => import('yaml');

const collect = (value: string, previous: string[] = []) => [...previous, value];
const integer = (value: string) => {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError('not an integer');
  return Number(value);
};

const program = new Command('virtctl')
  .description('virtctl controls virtual machine related operations on your kubernetes cluster (kubevirt-ts).')
  .option('--kubeconfig <path>', 'Path to the kubeconfig file to use for CLI requests.')
  .option('--context <name>', 'The name of the kubeconfig context to use')
  .option('--cluster <name>', 'The name of the kubeconfig cluster to use')
  .option('--user <name>', 'The name of the kubeconfig user to use')
  .option('-n, --namespace <namespace>', 'If present, the namespace scope for this CLI request')
  .option('-s, --server <url>', 'The address and port of the Kubernetes API server')
  .option('--token <token>', 'Bearer token for authentication to the API server')
  .option('--as <user>', 'Username to impersonate for the operation.')
  .option('--as-group <group>', 'Group to impersonate for the operation, this flag can be repeated to specify multiple groups.', collect)
  .option('--insecure-skip-tls-verify', "If true, the server's certificate will not be checked for validity.")
  .showHelpAfterError();

function connect(cmd: Command): Promise<Cluster> {
  const o = cmd.optsWithGlobals();
  const flags: ConnectionFlags = {
    kubeconfig: o.kubeconfig,
    context: o.context,
    cluster: o.cluster,
    user: o.user,
    namespace: o.namespace,
    server: o.server,
    token: o.token,
    as: o.as,
    asGroup: o.asGroup,
    insecureSkipTlsVerify: o.insecureSkipTlsVerify,
  };
  return Cluster.connect(flags);
}

/** Runs a command's action; an error is printed with what to do next, and the exit code is 1. */
function run<A extends unknown[]>(action: (cluster: Cluster, cmd: Command, ...args: A) => Promise<void>, name?: (...args: A) => string) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const actionArgs = args.slice(0, -2) as A;
    let cluster: Cluster | undefined;
    try {
      cluster = await connect(cmd);
      await action(cluster, cmd, ...actionArgs);
    } catch (error) {
      // For an API refusal, the server's own words, as upstream's virtctl prints them.
      const text = error instanceof ApiError ? error.status : (error as Error).message;
      const message = error instanceof UsageError || !cluster ? text : withHint(text, name?.(...actionArgs) ?? '', cluster.namespace);
      process.stderr.write(`Error: ${message}\n`);
      process.exitCode = 1;
    }
  };
}

const dryRunBody = (cmd: Command) => (cmd.opts().dryRun ? { dryRun: ['All'] } : {});
const dryRunOption = () => new Option('--dry-run', 'If true, only print the object that would be sent, without sending it.');
const said = (text: string, cmd: Command) => console.log(cmd.opts().dryRun ? `Dry Run execution: ${text}` : text);

program
  .command('start')
  .argument('<vm>')
  .description('Start a virtual machine.')
  .option('--paused', 'If set to true, start virtual machine in paused state')
  .addOption(dryRunOption())
  .action(
    run(
      async (cluster, cmd, name: string) => {
        await cluster.request('PUT', vmPath(cluster.namespace, name, 'start'), { paused: cmd.opts().paused === true, ...dryRunBody(cmd) });
        said(`VM ${name} was scheduled to start`, cmd);
      },
      (name) => name,
    ),
  );

/** stop and restart: the same flags, upstream's body key and message for each. */
for (const [action, bodyKey, withoutForce] of [
  ['stop', 'gracePeriod', 'Must both use --force=true and set --grace-period.'],
  ['restart', 'gracePeriodSeconds', 'Can not set gracePeriod without --force=true'],
] as const) {
  program
    .command(action)
    .argument('<vm>')
    .description(`${action === 'stop' ? 'Stop' : 'Restart'} a virtual machine.`)
    .option('--grace-period <seconds>', 'With --force, the seconds the guest gets to shut down (0: at once)', integer, -1)
    .option('--force', "Use --grace-period instead of the VMI's own termination grace period")
    .addOption(dryRunOption())
    .action(
      run(
        async (cluster, cmd, name: string) => {
          const { gracePeriod, force } = cmd.opts();
          if (gracePeriod !== -1 && !force) throw new UsageError(withoutForce);
          await cluster.request('PUT', vmPath(cluster.namespace, name, action), {
            ...(force && gracePeriod !== -1 && { [bodyKey]: gracePeriod }),
            ...dryRunBody(cmd),
          });
          said(`VM ${name} was scheduled to ${action}`, cmd);
        },
        (name) => name,
      ),
    );
}

program
  .command('migrate')
  .argument('<vm>')
  .description('Migrate a virtual machine.')
  .addOption(dryRunOption())
  .action(
    run(
      async (cluster, cmd, name: string) => {
        await cluster.request('PUT', vmPath(cluster.namespace, name, 'migrate'), dryRunBody(cmd));
        said(`VM ${name} was scheduled to migrate`, cmd);
      },
      (name) => name,
    ),
  );

program
  .command('migrate-cancel')
  .argument('<vm>')
  .description('Cancel migration of a virtual machine.')
  .addOption(dryRunOption())
  .action(
    run(
      async (cluster, cmd, name: string) => {
        const base = `/apis/kubevirt.io/v1/namespaces/${cluster.namespace}/virtualmachineinstancemigrations`;
        const list = await cluster.request<{ items: { metadata: { name: string }; status?: { phase?: string } }[] }>(
          'GET',
          `${base}?labelSelector=${encodeURIComponent(`kubevirt.io/vmi-name=${name}`)}`,
        );
        const active = list.items.find((m) => m.status?.phase !== 'Succeeded' && m.status?.phase !== 'Failed');
        if (!active) throw new Error(`Found no migration to cancel for ${name}`);
        await cluster.request('DELETE', `${base}/${active.metadata.name}${cmd.opts().dryRun ? '?dryRun=All' : ''}`);
        said(`VM ${name} was scheduled to migrate-cancel`, cmd);
      },
      (name) => name,
    ),
  );

/** pause and unpause take `vm NAME` or `vmi NAME`; both act on the VMI. */
for (const action of ['pause', 'unpause'] as const) {
  const parent = program.command(action).description(`${action === 'pause' ? 'Pause' : 'Unpause'} a virtual machine or instance.`);
  for (const kind of ['vm', 'vmi']) {
    parent
      .command(kind)
      .argument('<name>')
      .addOption(dryRunOption())
      .action(
        run(
          async (cluster, cmd, name: string) => {
            await cluster.request('PUT', vmiPath(cluster.namespace, name, action), dryRunBody(cmd));
            said(`VMI ${name} was scheduled to ${action}`, cmd);
          },
          (name) => name,
        ),
      );
  }
}

program
  .command('soft-reboot')
  .argument('<vmi>')
  .description('Soft reboot a virtual machine instance.')
  .action(
    run(
      async (cluster, _cmd, name: string) => {
        await cluster.request('PUT', vmiPath(cluster.namespace, name, 'softreboot'), {});
        console.log(`VMI ${name} was scheduled to softreboot`);
      },
      (name) => name,
    ),
  );

program
  .command('reset')
  .argument('<vmi>')
  .description('Reset a virtual machine instance: an immediate hard reset, like pressing its reset button.')
  .action(
    run(
      async (cluster, _cmd, name: string) => {
        await cluster.request('PUT', vmiPath(cluster.namespace, name, 'reset'), {});
        console.log(`VMI ${name} was reset`);
      },
      (name) => name,
    ),
  );

for (const [command, subresource] of [
  ['guestosinfo', 'guestosinfo'],
  ['userlist', 'userlist'],
  ['fslist', 'filesystemlist'],
] as const) {
  program
    .command(command)
    .argument('<vmi>')
    .description(`Return the ${subresource} of a running VMI, from its guest agent.`)
    .action(
      run(
        async (cluster, _cmd, name: string) => {
          console.log(JSON.stringify(await cluster.request('GET', vmiPath(cluster.namespace, name, subresource)), null, 2));
        },
        (name) => name,
      ),
    );
}

program
  .command('console')
  .argument('<vmi>')
  .description('Connect to a console of a virtual machine instance.')
  .option('--timeout <minutes>', 'The number of minutes to wait for the virtual machine instance to be ready.', integer, 5)
  .action(
    run(
      async (cluster, cmd, name: string) => {
        const deadline = Date.now() + cmd.opts().timeout * 60_000;
        // Upstream's rule: 400 means "not running yet", so wait and retry until the timeout.
        for (;;) {
          try {
            const ws = await cluster.stream(vmiPath(cluster.namespace, name, 'console'));
            return await (await streams()).attachConsole(ws, name);
          } catch (error) {
            if (!(error instanceof ApiError) || error.code !== 400) throw error;
            if (Date.now() >= deadline) throw new Error(`Timeout trying to connect to the virtual machine instance (${error.status})`);
            await new Promise((resolve) => setTimeout(resolve, 1000));
          }
        }
      },
      (name) => name,
    ),
  );

program
  .command('vnc')
  .argument('<vmi>')
  .description('Open a vnc connection to a virtual machine instance.')
  .option('--address <address>', 'The address the VNC proxy listens on (only with --proxy-only)', '127.0.0.1')
  .option('--port <port>', 'The local port of the proxy; random when 0', integer, 0)
  .option('--proxy-only', 'Only run the proxy and print the port VNC viewers can connect to')
  .option('--preserve-session', 'Keep an existing VNC session instead of dropping it')
  .action(
    run(
      async (cluster, cmd, name: string) => {
        const o = cmd.opts();
        let ws: Awaited<ReturnType<typeof cluster.stream>>;
        try {
          ws = await cluster.stream(vmiPath(cluster.namespace, name, 'vnc'), { preserveSession: String(o.preserveSession === true) });
        } catch (error) {
          throw new Error(`can't access VMI ${name}: ${error instanceof ApiError ? error.status : (error as Error).message}`);
        }
        await (await streams()).vncProxy(ws, { address: o.address, port: o.port, proxyOnly: o.proxyOnly === true });
      },
      (name) => name,
    ),
  );

const forwardPath = (namespace: string, target: Target, port: ForwardedPort) =>
  `${SUBRESOURCES}/namespaces/${target.namespace ?? namespace}/${target.kind === 'vm' ? 'virtualmachines' : 'virtualmachineinstances'}/${target.name}/portforward/${port.remote}${port.protocol === 'tcp' ? '' : `/${port.protocol}`}`;

program
  .command('port-forward')
  .argument('<target>', 'type/name[/namespace]')
  .argument('<ports...>', '[protocol/]localPort[:targetPort]')
  .description('Forward local ports to a virtualmachine or virtualmachineinstance.')
  .option('--stdio', 'Forward the tunnel to stdout/stdin; only works with a single port')
  .option('--address <address>', 'The address the local ports are opened on', '127.0.0.1')
  .action(
    run(
      async (cluster, cmd, targetText: string, portTexts: string[]) => {
        const target = parseTarget(targetText);
        const ports = portTexts.map(parsePort);
        if (cmd.opts().stdio) {
          if (ports.length !== 1) throw new UsageError('only one port supported when forwarding to stdout');
          return (await streams()).forwardStdio(await cluster.stream(forwardPath(cluster.namespace, target, ports[0])));
        }
        await (await streams()).forwardPorts(
          (port) => cluster.stream(forwardPath(cluster.namespace, target, port)),
          ports,
          cmd.opts().address,
          (line) => console.log(line),
        );
      },
      (target) => target.split('/')[1] ?? '',
    ),
  );

/** Flags of this invocation that a ProxyCommand must repeat to reach the same cluster as the same user. */
function connectionArgs(cmd: Command): string[] {
  const o = cmd.optsWithGlobals();
  return [
    ...(o.kubeconfig ? ['--kubeconfig', o.kubeconfig] : []),
    ...(o.context ? ['--context', o.context] : []),
    ...(o.as ? ['--as', o.as] : []),
    ...((o.asGroup as string[] | undefined) ?? []).flatMap((g) => ['--as-group', g]),
  ];
}

const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** ssh and scp options: the tunnel through port-forward, identity, known hosts, extra options. */
function sshOptions(cmd: Command, target: Target, namespace: string): string[] {
  const o = cmd.opts();
  const proxy = [...SELF, ...connectionArgs(cmd), 'port-forward', '--stdio', `${target.kind}/${target.name}/${namespace}`, String(o.port)]
    .map(quote)
    .join(' ');
  return [
    '-o',
    `ProxyCommand=${proxy}`,
    ...(o.knownHosts ? ['-o', `UserKnownHostsFile=${o.knownHosts}`] : []),
    ...((o.localSshOpts as string[] | undefined) ?? []).flatMap((opt) => opt.split(/\s+/).filter(Boolean)),
    ...(o.identityFile ? ['-i', o.identityFile] : []),
  ];
}

const withSshFlags = (command: Command) =>
  command
    .option('-l, --username <user>', "The user to connect as; the target's user@ wins", process.env.USER ?? process.env.USERNAME)
    .option('-i, --identity-file <path>', 'A private key to authenticate with')
    .option('--known-hosts <path>', 'The known_hosts file to use', join(homedir(), '.ssh', 'kubevirt_known_hosts'))
    .option('-p, --port <port>', "The port of the guest's SSH server", integer, 22)
    .option(
      '-t, --local-ssh-opts <option>',
      'Additional options for the local ssh client, e.g. "-o StrictHostKeyChecking=no"; repeatable',
      collect,
    );

/** Runs the system's ssh or scp, handing over the terminal; its exit code becomes ours. */
async function runClient(binary: string, args: string[]) {
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync(binary, args, { stdio: 'inherit' });
  if (result.error) throw new Error(`cannot run ${binary}: ${result.error.message}: install the OpenSSH client`);
  process.exitCode = result.status ?? 1;
}

withSshFlags(
  program
    .command('ssh')
    .argument('<target>', '[user@]type/name[/namespace]')
    .description('Open a SSH connection to a virtual machine instance.'),
)
  .option('-c, --command <command>', 'A command to execute in the VM')
  .action(
    run(async (cluster, cmd, targetText: string) => {
      const target = parseSshTarget(targetText);
      const namespace = target.namespace ?? cluster.namespace;
      const user = target.user ?? cmd.opts().username;
      const host = `${user ? `${user}@` : ''}${target.kind}.${target.name}.${namespace}`;
      await runClient('ssh', [...sshOptions(cmd, target, namespace), host, ...(cmd.opts().command ? [cmd.opts().command] : [])]);
    }),
  );

withSshFlags(
  program
    .command('scp')
    .argument('<source>')
    .argument('<destination>')
    .description('SCP files from/to a virtual machine instance. One of source and destination is [user@]type/name[/namespace]:path.'),
)
  .option('-r, --recursive', 'Copy directories recursively')
  .option('--preserve', 'Preserve modification times, access times and modes')
  .action(
    run(async (cluster, cmd, source: string, destination: string) => {
      const plan = parseScpArgs(source, destination);
      const namespace = plan.remote.namespace ?? cluster.namespace;
      const user = plan.remote.user ?? cmd.opts().username;
      const remote = `${user ? `${user}@` : ''}${plan.remote.kind}.${plan.remote.name}.${namespace}:${plan.remote.path}`;
      const flags = [...(cmd.opts().recursive ? ['-r'] : []), ...(cmd.opts().preserve ? ['-p'] : [])];
      await runClient('scp', [
        ...sshOptions(cmd, plan.remote, namespace),
        ...flags,
        ...(plan.toRemote ? [plan.local, remote] : [remote, plan.local]),
      ]);
    }),
  );

const EXPOSABLE: Record<string, { kind: Exposable['kind']; resource: string }> = {
  vmi: { kind: 'vmi', resource: 'virtualmachineinstances' },
  vmis: { kind: 'vmi', resource: 'virtualmachineinstances' },
  virtualmachineinstance: { kind: 'vmi', resource: 'virtualmachineinstances' },
  virtualmachineinstances: { kind: 'vmi', resource: 'virtualmachineinstances' },
  vm: { kind: 'vm', resource: 'virtualmachines' },
  vms: { kind: 'vm', resource: 'virtualmachines' },
  virtualmachine: { kind: 'vm', resource: 'virtualmachines' },
  virtualmachines: { kind: 'vm', resource: 'virtualmachines' },
  vmirs: { kind: 'vmirs', resource: 'virtualmachineinstancereplicasets' },
  vmirss: { kind: 'vmirs', resource: 'virtualmachineinstancereplicasets' },
  virtualmachineinstancereplicaset: { kind: 'vmirs', resource: 'virtualmachineinstancereplicasets' },
  virtualmachineinstancereplicasets: { kind: 'vmirs', resource: 'virtualmachineinstancereplicasets' },
};

program
  .command('expose')
  .argument('<type>', 'vmi, vm or vmirs')
  .argument('<name>')
  .description('Expose a virtual machine instance, virtual machine, or virtual machine instance replica set as a new service.')
  .requiredOption('--name <service>', 'Name of the service created for the exposure of the VM.')
  .option('--port <port>', 'The port that the service should serve on.', integer)
  .option('--target-port <port>', 'Name or number for the port on the VM that the service should direct traffic to. Optional.')
  .option('--protocol <protocol>', 'The network protocol for the service to be created.', 'TCP')
  .option('--type <type>', 'Type for this service: ClusterIP, NodePort, or LoadBalancer.', 'ClusterIP')
  .option('--port-name <name>', 'Name of the port. Optional.')
  .option(
    '--cluster-ip <ip>',
    "ClusterIP to be assigned to the service. Leave empty to auto-allocate, or set to 'None' to create a headless service.",
  )
  .option('--external-ip <ip>', 'Additional external IP address (not managed by the cluster) to accept for the service.')
  .action(
    run(
      async (cluster, cmd, typeText: string, name: string) => {
        const o = cmd.opts();
        const type = EXPOSABLE[typeText.toLowerCase()];
        if (!type) throw new UsageError(`unsupported resource type: ${typeText}`);
        const object = await cluster.request<VirtualMachine & VirtualMachineInstance & VirtualMachineInstanceReplicaSet>(
          'GET',
          `/apis/kubevirt.io/v1/namespaces/${cluster.namespace}/${type.resource}/${name}`,
        );
        const service = exposeService({ kind: type.kind, object } as Exposable, {
          serviceName: o.name,
          port: o.port,
          targetPort: o.targetPort,
          protocol: o.protocol,
          type: o.type,
          portName: o.portName,
          clusterIp: o.clusterIp,
          externalIp: o.externalIp,
        });
        await cluster.request('POST', `/api/v1/namespaces/${cluster.namespace}/services`, service);
        console.log(`Service ${o.name} successfully created for ${typeText} ${name}`);
      },
      (_type, name) => name,
    ),
  );

const create = program.command('create').description('Create a manifest for the specified Kind.');
create
  .command('vm')
  .description('Create a VirtualMachine manifest.')
  .option('--name <name>', 'Specify the name of the VM.')
  .option('--run-strategy <strategy>', 'Specify the RunStrategy of the VM.', 'Always')
  .option('--termination-grace-period <seconds>', 'Specify the termination grace period of the VM.', integer, 180)
  .option('--memory <quantity>', 'Specify the memory of the VM (not with --instancetype).')
  .option('--instancetype <[kind/]name>', 'Specify the Instance Type of the VM.')
  .option('--preference <[kind/]name>', 'Specify the Preference of the VM.')
  .option('--infer-instancetype [bool]', 'Infer the Instance Type of the VM from the first boot disk.', (v) => v !== 'false')
  .option('--infer-instancetype-from <volume>', 'Specify the volume to infer the Instance Type of the VM from.')
  .option('--infer-preference [bool]', 'Infer the Preference of the VM from the first boot disk.', (v) => v !== 'false')
  .option('--infer-preference-from <volume>', 'Specify the volume to infer the Preference of the VM from.')
  .option('--volume-containerdisk <params>', 'src:image[,name:name][,bootorder:N]; repeatable', collect, [])
  .option('--volume-pvc <params>', 'src:claim[,name:name][,bootorder:N]; repeatable', collect, [])
  .option('--cloud-init-user-data <base64>', 'Specify the base64 encoded cloud-init user data of the VM.')
  .option('--cloud-init-network-data <base64>', 'Specify the base64 encoded cloud-init network data of the VM.')
  .action(async (o) => {
    try {
      const { stringify: toYaml } = await yaml();
      if (o.memory && o.instancetype)
        throw new UsageError('--memory and --instancetype cannot be used together: the instance type sets the memory');
      const vm = createVm({
        name: o.name ?? `vm-${Math.random().toString(36).slice(2, 7)}`,
        namespace: program.opts().namespace,
        runStrategy: o.runStrategy,
        terminationGracePeriod: o.terminationGracePeriod,
        memory: o.memory ?? '512Mi',
        instancetype: o.instancetype,
        preference: o.preference,
        inferInstancetype: o.inferInstancetype,
        inferInstancetypeFrom: o.inferInstancetypeFrom,
        inferPreference: o.inferPreference,
        inferPreferenceFrom: o.inferPreferenceFrom,
        memoryGiven: o.memory !== undefined,
        explicitInstancetypeInference: o.inferInstancetype !== undefined || o.inferInstancetypeFrom !== undefined,
        explicitPreferenceInference: o.inferPreference !== undefined || o.inferPreferenceFrom !== undefined,
        containerdisks: o.volumeContainerdisk,
        pvcs: o.volumePvc,
        cloudInitUserData: o.cloudInitUserData,
        cloudInitNetworkData: o.cloudInitNetworkData,
      });
      process.stdout.write(toYaml(vm));
    } catch (error) {
      process.stderr.write(`Error: ${(error as Error).message}\n`);
      process.exitCode = 1;
    }
  });

program
  .command('expand')
  .description('Return the VirtualMachine object with expanded instancetype and preference.')
  .option('--vm <name>', 'Specify VirtualMachine name that should be expanded.')
  .option('-f, --file <path>', 'Specify a file with the VirtualMachine to expand.')
  .option('-o, --output <format>', 'yaml or json', 'yaml')
  .action(
    run(async (cluster, cmd) => {
      const o = cmd.opts();
      const { stringify: toYaml, parse: parseYaml } = await yaml();
      if (!o.vm === !o.file) throw new UsageError('error invalid arguments - VirtualMachine name or file must be provided (exactly one)');
      const expanded = o.vm
        ? await cluster.request('GET', vmPath(cluster.namespace, o.vm, 'expand-spec'))
        : await cluster.request(
            'PUT',
            `${SUBRESOURCES}/namespaces/${cluster.namespace}/expand-vm-spec`,
            parseYaml(readFileSync(o.file, 'utf8')),
          );
      process.stdout.write(o.output === 'json' ? `${JSON.stringify(expanded, null, 2)}\n` : toYaml(expanded));
    }),
  );

const printable = (v: VersionInfo) =>
  `version.Info{GitVersion:${JSON.stringify(v.gitVersion)}, GitCommit:${JSON.stringify(v.gitCommit)}, GitTreeState:${JSON.stringify(v.gitTreeState)}, BuildDate:${JSON.stringify(v.buildDate)}, GoVersion:${JSON.stringify(v.goVersion)}, Compiler:${JSON.stringify(v.compiler)}, Platform:${JSON.stringify(v.platform)}}`;

program
  .command('version')
  .description('Print the client and server version information.')
  .option('--client', 'Client version only (no server required).')
  .action(
    run(async (cluster, cmd) => {
      console.log(`Client Version: ${printable(versionInfo())}`);
      if (!cmd.opts().client)
        console.log(`Server Version: ${printable(await cluster.request<VersionInfo>('GET', `${SUBRESOURCES}/version`))}`);
    }),
  );

// image-upload's module (and its progress bar's) is loaded only when it may run or be listed: when
// the command line names no other command (help, an unknown command, image-upload itself).
const OTHER_COMMANDS = new Set(program.commands.map((c) => c.name()));
const args = process.argv.slice(2);
if (args.includes('image-upload') || !args.some((arg) => OTHER_COMMANDS.has(arg)))
  (await import('./image-upload.ts')).addImageUploadCommand(program, run);

await program.parseAsync();
// Streams may leave handles behind when the peer vanishes; the command is done.
process.exit(process.exitCode ?? 0);
