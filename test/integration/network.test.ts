// virt-handler's network script run for real, in a throwaway network
// namespace with a stand-in eth0: the kernel and the real ip and iptables
// tools decide whether the script does what the plan says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import { defaultNewVmi } from '../../src/api/defaults/vmi.ts';
import type { VirtualMachineInstance } from '../../src/api/types.ts';
import { networkScript, planPodNetwork } from '../../src/handler/network.ts';
import { example, fixedContext } from '../helpers/fixtures.ts';

const run = (argv: string[]) => execFileSync(argv[0], argv.slice(1), { encoding: 'utf8' });
const tool = (name: string) => run(['sh', '-c', `command -v ${name}`]).trim();

/**
 * Runs `script` in a new, unnamed network namespace whose eth0 looks like a
 * pod's (a veth pair, both ends inside: this kernel may lack the dummy
 * driver), then each of `questions`; returns their outputs. Named namespaces
 * (ip netns) are avoided: they remount /run/netns, under the container runtime's feet.
 */
function inPodNamespace(script: string, questions: string[]): string[] {
  const setup = [
    `${tool('ip')} link add eth0 type veth peer name peer0`,
    `${tool('ip')} addr add ${pod.ip}/${pod.prefixLength} dev eth0`,
    `${tool('ip')} link set eth0 up`,
  ].join('\n');
  const asked = questions.map((q) => `echo '<<answer>>'; ${q}`).join('\n');
  const output = run(['unshare', '--net', '--', 'sh', '-ec', `${setup}\n${script}\n${asked}`]);
  return output.split('<<answer>>\n').slice(1);
}

const pod = { ip: '10.244.9.7', prefixLength: 24, gateway: '10.244.9.1', mac: '9a:00:00:00:09:07', mtu: 1500 };
function vmi(name: string): VirtualMachineInstance {
  const v = defaultNewVmi(
    {
      ...example<VirtualMachineInstance>(name),
      metadata: { ...example<VirtualMachineInstance>(name).metadata, namespace: 'ns', uid: 'uid-1' },
    },
    new ClusterConfig({}),
    fixedContext(),
  );
  return v;
}

test('masquerade: the script builds the bridge and tap, forwards only the declared port and sets the sysctls', () => {
  const plan = planPodNetwork(vmi('vmi-masquerade.yaml'), pod);
  const [tapJson, bridgeJson, nat, forward, unprivileged] = inPodNamespace(networkScript(plan.commands, tool), [
    `${tool('ip')} -j -d link show tap0`,
    `${tool('ip')} -j addr show k6t-eth0`,
    `${tool('iptables-save')} -t nat`,
    'cat /proc/sys/net/ipv4/ip_forward',
    'cat /proc/sys/net/ipv4/ip_unprivileged_port_start',
  ]);
  const tap = JSON.parse(tapJson)[0];
  assert.equal(tap.master, 'k6t-eth0');
  assert.equal(String(tap.linkinfo.info_data.user), '107');
  const bridge = JSON.parse(bridgeJson)[0];
  assert.deepEqual(
    bridge.addr_info
      .filter((a: { family: string }) => a.family === 'inet')
      .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
    ['10.0.2.1/24'],
  );
  assert.match(nat, /-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10\.0\.2\.2/);
  assert.match(nat, /-A POSTROUTING -s 10\.0\.2\.2\/32 -o eth0 -j MASQUERADE/);
  assert.equal(forward.trim(), '1');
  assert.equal(unprivileged.trim(), '0');
  assert.notEqual(run(['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start']).trim(), '0', "the host's own setting is untouched");
});

test('bridge: the script moves the pod address off eth0 and enslaves it; a failing command stops the script', () => {
  const plan = planPodNetwork(vmi('vmi-nocloud.yaml'), pod);
  const script = networkScript(plan.commands, tool);
  const [eth0Json, routeJson] = inPodNamespace(script, [`${tool('ip')} -j addr show eth0`, `${tool('ip')} -j route show ${pod.ip}`]);
  const eth0 = JSON.parse(eth0Json)[0];
  assert.equal(eth0.master, 'k6t-eth0');
  assert.deepEqual(
    eth0.addr_info.filter((a: { family: string }) => a.family === 'inet'),
    [],
  );
  assert.notEqual(eth0.address, pod.mac);
  assert.equal(JSON.parse(routeJson)[0].dev, 'k6t-eth0');
  // Run twice, the second time on what is already there: ip -batch stops at the first error, and so does the script.
  assert.throws(() => inPodNamespace(`${script}\n${script}`, []), /File exists/);
});
