// The admission webhooks fuzzed, as upstream's FuzzAdmitter does: every upstream
// example and a kitchen-sink VMI, mutated at random along their trees, go
// through the schema check, defaulting and validation as the webhooks run them,
// and a share of them through the AdmissionReview handler itself. No input may
// throw, every rejection names its field, an admitted object is a fixed point of
// defaulting, and no review takes over 700 ms.
// FUZZ_SEED=<n> replays a run; a failure prints its seed and its mutations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';
import { EXAMPLES_DIR, example, exampleNames, fixedContext } from '../helpers/fixtures.ts';
import { ClusterConfig } from '../../src/api/cluster-config.ts';
import type { StatusCause } from '../../src/api/causes.ts';
import { defaultNewVmi, type DefaultingContext } from '../../src/api/defaults/vmi.ts';
import { defaultVm } from '../../src/api/defaults/vm.ts';
import { canonicalQuantity } from '../../src/api/quantity.ts';
import { expandVm } from '../../src/api/instancetype.ts';
import { validateSchema } from '../../src/api/validation/schema.ts';
import {
  validateInstancetype,
  validateMigrationCreate,
  validateMigrationPolicy,
  validatePool,
  validatePreference,
  validateReplicaSet,
  validateVm,
  validateVmiCreate,
} from '../../src/api/validation/objects.ts';
import { review, type AdmissionEnvironment, type AdmissionReview } from '../../src/virt-api/admission.ts';
import type {
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstancetypeSpec,
  VirtualMachinePreferenceSpec,
} from '../../src/api/types.ts';

const FUZZ_SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20260822;
const PIPELINE_RUNS = 10_000;
const REVIEW_RUNS = 600;
const REVIEW_BUDGET_MS = 700;
const CONTROLLER_SA = 'system:serviceaccount:kubevirt:kubevirt-controller';
const USER = { isKubeVirtServiceAccount: false };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

// ---------------------------------------------------------------- seeds

interface Seed {
  name: string;
  object: Obj;
}

function documents(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((doc) => doc.toJSON() as Obj)
    .filter(Boolean);
}

const [KITCHEN_SINK] = documents(join(import.meta.dirname, '..', 'fixtures', 'vmi-kitchen-sink.yaml'));

/**
 * The kitchen sink as an object upstream admits, so that its mutations reach
 * the fixed-point check too: the fixture pauses a VMI that has a liveness
 * probe, gives its no-cloud volume two sources of each kind of data and
 * leaves its downward-metrics volume to a disk on the default (sata) bus.
 */
function admissible(sink: Obj): Obj {
  const vmi = structuredClone(sink) as unknown as VirtualMachineInstance;
  delete vmi.spec.startStrategy;
  const noCloud = vmi.spec.volumes!.find((v) => v.cloudInitNoCloud)!.cloudInitNoCloud!;
  delete noCloud.secretRef;
  delete noCloud.networkDataSecretRef;
  vmi.spec.domain.devices.disks!.push({ name: 'dm', disk: { bus: 'virtio' } });
  return vmi as unknown as Obj;
}

const EXAMPLES: Seed[] = exampleNames().flatMap((name) => documents(join(EXAMPLES_DIR, name)).map((object) => ({ name, object })));
const VIRTIO = EXAMPLES.find((seed) => seed.name === 'virtio.yaml')!.object;

const SEEDS: Seed[] = [
  ...EXAMPLES,
  // No upstream example is a cluster preference; its webhook runs the same checks.
  { name: 'virtio.yaml as a cluster preference', object: { ...VIRTIO, kind: 'VirtualMachineClusterPreference' } },
  { name: 'vmi-kitchen-sink.yaml', object: KITCHEN_SINK },
  { name: 'vmi-kitchen-sink.yaml made admissible', object: admissible(KITCHEN_SINK) },
];
const SINKS = SEEDS.slice(-2);
const kindOf = (object: Obj) => object.kind as string;

/** The instance types and preferences among the seeds, by name, as the VM webhook's informer cache would hold them. */
const specsOf = <T>(kinds: string[]) =>
  new Map(
    SEEDS.filter((s) => kinds.includes(kindOf(s.object))).map((s) => [(s.object.metadata as Obj).name as string, s.object.spec as T]),
  );
const INSTANCETYPES = specsOf<VirtualMachineInstancetypeSpec>(['VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype']);
const PREFERENCES = specsOf<VirtualMachinePreferenceSpec>(['VirtualMachinePreference', 'VirtualMachineClusterPreference']);

/** The feature gates and network binding the kitchen sink needs, with which most of validation is reachable. */
const OPEN = {
  developerConfiguration: {
    featureGates: [
      'HostDisk',
      'Sidecar',
      'ExperimentalIgnitionSupport',
      'DownwardMetrics',
      'HostDevices',
      'VSOCK',
      'PersistentReservation',
      'ReservedOverheadMemlock',
      'Root',
    ],
  },
  network: { binding: { plugin: {} } },
};
const GATED = new ClusterConfig(OPEN);

/** A few cluster configurations, each taking other branches of defaulting and validation. */
const CONFIGS = [
  new ClusterConfig(),
  GATED,
  new ClusterConfig({
    ...OPEN,
    network: { ...OPEN.network, defaultNetworkInterface: 'masquerade' },
    evictionStrategy: 'LiveMigrate',
    cpuRequest: '200m',
    cpuModel: 'Haswell',
  }),
  new ClusterConfig({ ...OPEN, liveUpdateConfiguration: { maxGuest: '8Gi', maxCpuSockets: 8, maxHotplugRatio: 2 } }),
  new ClusterConfig({ ...OPEN, vmRolloutStrategy: 'Stage' }),
  new ClusterConfig(OPEN, 'arm64'),
  new ClusterConfig(OPEN, 's390x'),
];

// ---------------------------------------------------------------- mutations

const isContainer = (value: Json): value is Json[] | Obj => value !== null && typeof value === 'object';

/** A place in a tree: the member `key` of `parent`, holding `value`. */
interface Slot {
  parent: Json[] | Obj;
  key: string | number;
  value: Json;
}

/** Every place below the root, parents before their children. */
function slots(root: Json): Slot[] {
  const out: Slot[] = [];
  const walk = (parent: Json) => {
    if (Array.isArray(parent)) {
      parent.forEach((value, key) => {
        out.push({ parent, key, value });
        walk(value);
      });
    } else if (isContainer(parent)) {
      for (const [key, value] of Object.entries(parent)) {
        out.push({ parent, key, value });
        walk(value);
      }
    }
  };
  walk(root);
  return out;
}

function put(parent: Json[] | Obj, key: string | number, value: Json) {
  if (Array.isArray(parent)) parent[key as number] = value;
  // As JSON.parse would: a key such as __proto__ becomes an own member, not the prototype.
  else Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Whether `node` is `tree` or somewhere inside it. */
const within = (node: Json, tree: Json): boolean => node === tree || slots(tree).some((slot) => slot.value === node);

const ODD_STRINGS = [
  '',
  ' ',
  '0',
  '-0',
  '-1',
  '1',
  '-1Gi',
  '1.5Xi',
  '1.5Gi',
  '1e999999999',
  '1e-999999999',
  '1e400',
  '1e1.5',
  '1E3',
  '1e18',
  '1e19',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775808',
  '.5',
  '1.',
  '+1Ki',
  ' 1Gi',
  '1Gi ',
  '1 Gi',
  '0x10',
  'NaN',
  'Infinity',
  '100m',
  '1n',
  '1Ei',
  '8Ei',
  '1Ki',
  '2Mi',
  '1Gi',
  '64Mi',
  '100%',
  '0%',
  '-5%',
  '101%',
  'abc%',
  'ide',
  'virtio',
  'sata',
  'scsi',
  'usb',
  'None',
  'Paused',
  'Always',
  'Manual',
  'Halted',
  'WaitAsReceiver',
  'q35',
  'pc-q35-rhel9.6.0',
  'virt',
  'arm64',
  's390x',
  'ppc64le',
  'amd64',
  'masquerade',
  'bridge',
  'tablet',
  'LiveMigrate',
  'Disk',
  'DiskOrCreate',
  'native',
  'threads',
  'ich9',
  'hyperv',
  'shared',
  'auto',
  'supplementalPool',
  'preferCores',
  'spread',
  'TCP',
  'SCTP',
  'up',
  'down',
  'absent',
  'Ignore',
  '/',
  '//',
  '/./a',
  'a/../../b',
  '/boot/../vmlinuz',
  'relative/path',
  '::',
  '1.2.3.4',
  '256.1.1.1',
  'fe80::1',
  '::ffff:1.2.3.4',
  '0000:00:00.0',
  '0000:81:01.7',
  'ff:ff:ff:ff:ff:ff',
  '02:00:00:00:00:00',
  '00:11:22:33:44:55:66:77',
  'true',
  'null',
  '[]',
  '{}',
  '*',
  '?',
  '.*',
  '(a+)+$',
  '\\',
  '"',
  "'",
  '${x}',
  '\u0000',
  '\u202e',
  '🙂',
  'UPPER',
  'a_b',
  'a--b',
  '-a',
  'a-',
  'kubevirt.io/vm',
  'kubevirt.io/created-by',
  'hooks.kubevirt.io/hookSidecars',
  'kubevirt.io/ignitiondata',
  '__proto__',
  'constructor',
  'toString',
  'eA==',
  'not base64!',
  '1'.repeat(300),
  'a'.repeat(64),
  'a'.repeat(254),
  'a.'.repeat(200),
  'x'.repeat(10_000),
  '1'.repeat(10_000),
  `1${'0'.repeat(10_000)}Ki`,
  `0.${'0'.repeat(5000)}1`,
];
const ODD_NUMBERS = [
  0,
  -0,
  -1,
  1,
  2,
  3,
  7,
  511,
  512,
  513,
  4096,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  -(2 ** 31) - 1,
  2 ** 53 - 1,
  2 ** 53 + 2,
  2 ** 63,
  -(2 ** 63),
  2 ** 64,
  1e21,
  1e300,
  -1e300,
  Number.MAX_VALUE,
  0.5,
  1.5,
  -0.5,
  1e-300,
  223,
  224,
  254,
  255,
];

const quantityString = fc
  .tuple(
    fc.oneof(fc.integer({ min: -5, max: 1 << 20 }).map(String), fc.constantFrom('0.5', '1.5', '.25', '3.')),
    fc.constantFrom('', 'Ki', 'Mi', 'Gi', 'Ti', 'Ei', 'm', 'k', 'M', 'G', 'e3', 'E-2', 'e9', 'e40', 'e-40', 'Xi', 'i', 'e', 'K', 'mi'),
  )
  .map(([number, suffix]) => number + suffix);
const oddString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 2, arbitrary: quantityString },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);
const isInt64 = (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 63;
const oddNumber = fc.oneof(fc.constantFrom(...ODD_NUMBERS), fc.integer({ min: -10, max: 100_000 }));
const oddInteger = fc.oneof(fc.constantFrom(...ODD_NUMBERS.filter(isInt64)), fc.integer({ min: -10, max: 100_000 }));
const leaf: fc.Arbitrary<Json> = fc.oneof(oddString, oddNumber, fc.boolean(), fc.constant(null));
const anyJson: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: leaf },
  { weight: 1, arbitrary: fc.constantFrom<Json>([], {}, [''], [null], { '': null }) },
  { weight: 1, arbitrary: fc.array(leaf, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('name', 'x', 'bus', 'guest', 'pod'), leaf, { maxKeys: 3 }) },
);
const unknownKey = fc.oneof(
  fc.constantFrom('unknown', 'x-extra', 'Name', 'constructor', '__proto__', 'toString'),
  fc.string({ maxLength: 6 }),
);

/** One change to an object's tree; `at` and the like pick a node modulo how many there are. */
type Mutation =
  | { op: 'delete'; at: number }
  | { op: 'retype'; at: number; value: Json }
  | { op: 'string'; at: number; value: string }
  | { op: 'number'; at: number; value: number }
  | { op: 'transplant'; at: number; from: number }
  | { op: 'duplicate'; at: number; which: number; where: number }
  | { op: 'unknown'; at: number; key: string; value: Json };

/**
 * A case is a handful of mutations. Syntactic ones may put any JSON anywhere;
 * semantic ones keep every value's JSON type, so most objects get past the
 * schema check into defaulting and validation (upstream fuzzes both ways too).
 */
interface Changes {
  keepTypes: boolean;
  list: Mutation[];
}

function mutationOf(keepTypes: boolean): fc.Arbitrary<Mutation> {
  const typed = [
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
    { weight: 3, arbitrary: fc.record({ op: fc.constant('string' as const), at: fc.nat(), value: oddString }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('number' as const), at: fc.nat(), value: keepTypes ? oddInteger : oddNumber }) },
    fc.record({ op: fc.constant('transplant' as const), at: fc.nat(), from: fc.nat() }),
    fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), which: fc.nat(), where: fc.nat() }),
    fc.record({ op: fc.constant('unknown' as const), at: fc.nat(), key: unknownKey, value: anyJson }),
  ];
  if (keepTypes) return fc.oneof(...typed);
  return fc.oneof(...typed, { weight: 2, arbitrary: fc.record({ op: fc.constant('retype' as const), at: fc.nat(), value: anyJson }) });
}

const changesOf = (keepTypes: boolean) =>
  fc.record({ keepTypes: fc.constant(keepTypes), list: fc.array(mutationOf(keepTypes), { minLength: 1, maxLength: 6 }) });
const changes: fc.Arbitrary<Changes> = fc.oneof(changesOf(true), changesOf(false));

const pick = <T>(list: T[], n: number): T | undefined => (list.length ? list[n % list.length] : undefined);

const jsonType = (value: Json) => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value);

function applyMutation(root: Obj, m: Mutation, keepTypes: boolean): void {
  const all = slots(root);
  switch (m.op) {
    case 'delete': {
      const target = pick(all, m.at);
      if (!target) return;
      if (Array.isArray(target.parent)) target.parent.splice(target.key as number, 1);
      else delete target.parent[target.key];
      return;
    }
    case 'retype': {
      const target = pick(all, m.at);
      if (target) put(target.parent, target.key, structuredClone(m.value));
      return;
    }
    case 'string':
    case 'number': {
      const target =
        pick(
          all.filter((slot) => typeof slot.value === m.op),
          m.at,
        ) ?? (keepTypes ? undefined : pick(all, m.at));
      if (target) put(target.parent, target.key, m.value);
      return;
    }
    case 'transplant': {
      // A subtree copied over another: well-typed nonsense, such as a volume where a disk belongs.
      const target = pick(all, m.at);
      const source = pick(all, m.from);
      // Not into itself, which would only nest it deeper and deeper.
      if (!target || !source || within(target.parent, source.value)) return;
      if (!keepTypes || jsonType(source.value) === jsonType(target.value)) put(target.parent, target.key, structuredClone(source.value));
      return;
    }
    case 'duplicate': {
      const target = pick(
        all.filter((slot) => Array.isArray(slot.value) && slot.value.length > 0),
        m.at,
      );
      if (!target) return;
      const list = target.value as Json[];
      list.splice(m.where % (list.length + 1), 0, structuredClone(list[m.which % list.length]));
      return;
    }
    case 'unknown': {
      const objects = [root, ...all.map((slot) => slot.value)].filter((value): value is Obj => isContainer(value) && !Array.isArray(value));
      const target = pick(objects, m.at);
      if (target) put(target, m.key, structuredClone(m.value));
      return;
    }
  }
}

function mutate(seed: Obj, { keepTypes, list }: Changes): Obj {
  const object = structuredClone(seed);
  for (const change of list) applyMutation(object, change, keepTypes);
  return object;
}

// ---------------------------------------------------------------- the pipeline the webhooks run

type Defaulter = (object: never, config: ClusterConfig, ctx: DefaultingContext) => Obj;
type Validator = (object: never, config: ClusterConfig) => StatusCause[];

/** What each kind's mutating webhook does after the schema check. */
const DEFAULTERS: Record<string, Defaulter> = {
  VirtualMachineInstance: (vmi, config, ctx) => defaultNewVmi(vmi, config, ctx) as unknown as Obj,
  VirtualMachine: (vm, config, ctx) => defaultVm(vm, config, ctx, 'CREATE') as unknown as Obj,
};

function instancetypeFor(vm: VirtualMachine): VirtualMachineInstancetypeSpec | undefined {
  const name = vm.spec?.instancetype?.name;
  return name ? INSTANCETYPES.get(name) : undefined;
}

/** What each kind's validating webhook does after the schema check. */
const VALIDATORS: Record<string, Validator> = {
  VirtualMachineInstance: (vmi, config) => validateVmiCreate(vmi, config, USER),
  VirtualMachine: (vm: VirtualMachine, config) => validateVm(vm, config, USER, instancetypeFor(vm)),
  VirtualMachineInstanceReplicaSet: (rs, config) => validateReplicaSet(rs, config),
  VirtualMachinePool: (pool, config) => validatePool(pool, config, USER),
  VirtualMachineInstanceMigration: (migration, config) => validateMigrationCreate(migration, config, USER),
  VirtualMachineInstancetype: (instancetype) => validateInstancetype(instancetype),
  VirtualMachineClusterInstancetype: (instancetype) => validateInstancetype(instancetype),
  VirtualMachinePreference: (preference) => validatePreference(preference),
  VirtualMachineClusterPreference: (preference) => validatePreference(preference),
  MigrationPolicy: (policy) => validateMigrationPolicy(policy),
};

/** Upstream gives this one cause no field; its message names the three fields instead. */
const FIELDLESS_UPSTREAM = /^no memory requested, at least one of /;

/** What a failure message says about the case; built only when something fails. */
type Context = () => string;

function expect(condition: unknown, message: string, context: Context): asserts condition {
  if (!condition) assert.fail(`${message}\n${context()}`);
}

function assertFields(causes: StatusCause[], context: Context) {
  for (const cause of causes) {
    if (FIELDLESS_UPSTREAM.test(cause.message)) continue;
    expect(typeof cause.field === 'string' && cause.field.length > 0, `a cause without a field: ${JSON.stringify(cause)}`, context);
    expect(typeof cause.message === 'string' && cause.message.length > 0, `a cause without a message: ${JSON.stringify(cause)}`, context);
  }
}

function timed<T>(what: string, context: Context, run: () => T): T {
  const start = performance.now();
  const result = run();
  const elapsed = performance.now() - start;
  expect(elapsed < REVIEW_BUDGET_MS, `${what} took ${elapsed.toFixed(0)} ms`, context);
  return result;
}

const asJson = (value: unknown): Obj => JSON.parse(JSON.stringify(value));

/**
 * A VMI's create-time defaulting appends its finalizer and a Pending
 * timestamp every time, as upstream's does; the rest must be a fixed point.
 */
function withoutCreateAppends(kind: string, object: unknown): Obj {
  const copy = asJson(object);
  if (kind === 'VirtualMachineInstance') {
    delete (copy.metadata as Obj).finalizers;
    delete (copy.status as Obj).phaseTransitionTimestamps;
  }
  return copy;
}

/** The mutating and then the validating webhook, as kube-apiserver calls them; returns the causes of a rejection. */
function admit(kind: string, object: Obj, config: ClusterConfig, context: Context): StatusCause[] {
  // kube-apiserver always sends metadata; the webhooks' object() fills it in likewise.
  object.metadata ??= {};
  const defaulter = DEFAULTERS[kind];
  const mutated = timed('the mutating review', context, (): { causes: StatusCause[]; defaulted?: Obj } => {
    const causes = validateSchema(kind, object);
    if (causes.length) return { causes };
    return { causes, defaulted: defaulter ? defaulter(object as never, config, fixedContext()) : object };
  });
  if (!mutated.defaulted) return mutated.causes;
  const defaulted = mutated.defaulted;
  // kube-apiserver checks the schema again between the two webhooks, and so does the validating one.
  const causes = timed('the validating review', context, () => [
    ...validateSchema(kind, defaulted),
    ...VALIDATORS[kind](defaulted as never, config),
  ]);
  if (causes.length) return causes;
  if (defaulter) {
    const again = defaulter(defaulted as never, config, fixedContext());
    const [twice, once] = [withoutCreateAppends(kind, again), withoutCreateAppends(kind, defaulted)];
    if (!isDeepStrictEqual(twice, once)) assert.deepStrictEqual(twice, once, `defaulting twice changed the object\n${context()}`);
  }
  if (kind === 'VirtualMachine') {
    // What virt-api's expand-spec makes of an admitted VM must not throw either.
    const vm = defaulted as unknown as VirtualMachine;
    expandVm(vm, instancetypeFor(vm), PREFERENCES.get(vm.spec.preference?.name ?? ''));
  }
  return [];
}

const describe =
  (seed: Seed, changes: Changes): Context =>
  () =>
    `seed ${seed.name}, FUZZ_SEED=${FUZZ_SEED}, mutations ${JSON.stringify(changes).slice(0, 2000)}`;

// ---------------------------------------------------------------- properties

/** The kitchen sinks have the most fields to break, so they get 30% of the runs; the rest share the others. */
const SINK_RUNS = 1500;
const runsFor = (seed: Seed) =>
  SINKS.includes(seed) ? SINK_RUNS : Math.ceil((PIPELINE_RUNS - SINKS.length * SINK_RUNS) / (SEEDS.length - SINKS.length));

test('the seeds cover every kind, pass the schema, and the runs add up to the budget', () => {
  assert.ok(SEEDS.length >= 23, `found ${SEEDS.length} seeds`);
  assert.ok(SEEDS.reduce((sum, seed) => sum + runsFor(seed), 0) >= PIPELINE_RUNS);
  assert.deepEqual(new Set(SEEDS.map((seed) => kindOf(seed.object))), new Set(Object.keys(VALIDATORS)));
  for (const seed of SEEDS) assert.deepEqual(validateSchema(kindOf(seed.object), seed.object), [], seed.name);
  assert.deepEqual(
    admit('VirtualMachineInstance', structuredClone(SINKS[1].object), GATED, () => 'the admissible kitchen sink'),
    [],
  );
});

for (const seed of SEEDS) {
  const kind = kindOf(seed.object);
  test(`mutated ${seed.name} never throws, names every rejected field and defaults to a fixed point`, () => {
    fc.assert(
      fc.property(changes, fc.constantFrom(...CONFIGS), (change, config) => {
        const context = describe(seed, change);
        assertFields(admit(kind, mutate(seed.object, change), config, context), context);
      }),
      { seed: FUZZ_SEED, numRuns: runsFor(seed) },
    );
  });
}

/** Every webhook path, for the kind it serves. */
const PATHS: Record<string, string[]> = {
  VirtualMachineInstance: [
    '/virtualmachineinstances-mutate',
    '/virtualmachineinstances-validate-create',
    '/virtualmachineinstances-validate-update',
  ],
  VirtualMachine: ['/virtualmachines-mutate', '/virtualmachines-validate'],
  VirtualMachineInstanceReplicaSet: ['/virtualmachinereplicaset-validate'],
  VirtualMachinePool: ['/virtualmachinepool-validate'],
  VirtualMachineInstanceMigration: ['/migration-mutate-create', '/migration-validate-create', '/migration-validate-update'],
  VirtualMachineInstancetype: ['/virtualmachineinstancetypes-validate'],
  VirtualMachineClusterInstancetype: ['/virtualmachineclusterinstancetypes-validate'],
  VirtualMachinePreference: ['/virtualmachinepreferences-validate'],
  VirtualMachineClusterPreference: ['/virtualmachineclusterpreferences-validate'],
  MigrationPolicy: ['/migration-policy-validate-create'],
};

function environment(config: ClusterConfig): AdmissionEnvironment {
  return {
    ...fixedContext(),
    config: () => config,
    kubevirtServiceAccounts: new Set([CONTROLLER_SA]),
    findInstancetype: (_namespace, _kind, name) => INSTANCETYPES.get(name),
  };
}

/** A well-formed AdmissionReview answer: allowed or not, a status with a message when not, a patch that applies. */
function assertWellFormed(answer: AdmissionReview, uid: string, object: unknown, context: Context) {
  expect(
    answer.apiVersion === 'admission.k8s.io/v1' && answer.kind === 'AdmissionReview',
    `not an AdmissionReview: ${JSON.stringify(answer)}`,
    context,
  );
  const response = answer.response;
  expect(response, 'no response', context);
  expect(response.uid === uid, `the response's uid is ${response.uid}`, context);
  expect(typeof response.allowed === 'boolean', `allowed is ${response.allowed}`, context);
  if (!response.allowed) {
    const status = response.status;
    expect(status && typeof status.message === 'string' && status.message.length > 0, 'a denial without a message', context);
    expect(Number.isInteger(status.code) && status.code >= 400 && status.code < 500, `a denial with code ${status.code}`, context);
    assertFields(status.details?.causes ?? [], context);
    expect(response.patch === undefined, 'a denial with a patch', context);
  } else if (response.patch !== undefined) {
    expect(response.patchType === 'JSONPatch', `a patch of type ${response.patchType}`, context);
    const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString());
    expect(Array.isArray(ops) && ops.length > 0, 'an empty patch', context);
    try {
      jsonpatch.applyPatch(structuredClone(object), ops, true, false);
    } catch (error) {
      expect(false, `the patch does not apply: ${(error as Error).message}`, context);
    }
  }
}

const reviewCase = fc.record({
  seed: fc.constantFrom(...SEEDS),
  change: changes,
  path: fc.nat(),
  operation: fc.constantFrom('CREATE' as const, 'UPDATE' as const, 'DELETE' as const),
  old: fc.constantFrom('seed', 'mutated', 'none'),
  username: fc.constantFrom('alice', CONTROLLER_SA, undefined),
  config: fc.constantFrom(...CONFIGS),
  envelope: fc.constantFrom('whole', 'whole', 'whole', 'whole', 'no-uid', 'no-object', 'scalar-object', 'array-object', 'no-request'),
});

test('the AdmissionReview handler answers every mutated request with a well-formed review', () => {
  fc.assert(
    fc.property(reviewCase, ({ seed, change, path, operation, old, username, config, envelope }) => {
      const paths = PATHS[kindOf(seed.object)];
      const url = paths[path % paths.length];
      const malformed: Record<string, Json | undefined> = { 'no-object': undefined, 'scalar-object': 'x', 'array-object': [] };
      const object = envelope in malformed ? malformed[envelope] : mutate(seed.object, change);
      const oldObject = {
        seed: structuredClone(seed.object),
        mutated: mutate(seed.object, { ...change, list: change.list.slice(1) }),
        none: undefined,
      }[old];
      const uid = envelope === 'no-uid' || envelope === 'no-request' ? '' : 'fuzz-uid';
      const body: AdmissionReview = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        ...(envelope !== 'no-request' && {
          request: { ...(uid && { uid }), operation, object, oldObject, userInfo: { username } } as AdmissionReview['request'],
        }),
      };
      const context = () => `${url} ${operation} old=${old} envelope=${envelope} ${describe(seed, change)()}`;
      const answer = timed(`the review at ${url}`, context, () => review(url, structuredClone(body), environment(config)));
      assertWellFormed(answer, uid, object, context);
    }),
    { seed: FUZZ_SEED, numRuns: REVIEW_RUNS },
  );
});

// ---------------------------------------------------------------- regressions: each input crashed a webhook once

function answer(path: string, object: unknown, extra: Partial<NonNullable<AdmissionReview['request']>> = {}, config = CONFIGS[0]) {
  const body: AdmissionReview = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'regression', operation: 'CREATE', object, userInfo: { username: 'alice' }, ...extra },
  };
  // A copy, as if decoded from the wire: the handler must not lean on changing the caller's object.
  const reviewed = review(path, structuredClone(body), environment(config));
  assertWellFormed(reviewed, 'regression', object, () => path);
  return reviewed.response!;
}

const causedAt = (response: ReturnType<typeof answer>) => response.status?.details?.causes.map((c) => c.field);
const ephemeral = (edit: (vmi: Obj & { spec: Obj }) => void) => {
  const vmi = example<Obj & { spec: Obj }>('vmi-ephemeral.yaml');
  edit(vmi);
  return vmi;
};

test('regression: a wrong-typed field is a schema error naming the field, not a TypeError in defaulting', () => {
  // Each of these threw from defaulting or validation: "disk.image.endsWith is not a function",
  // "networks is not iterable", "Cannot read properties of null", "Cannot create property 'labels' on number".
  const cases: [string, unknown, string][] = [
    [
      '/virtualmachineinstances-mutate',
      ephemeral((vmi) => ((vmi.spec.domain as Obj).devices = { disks: 'x' })),
      'spec.domain.devices.disks',
    ],
    [
      '/virtualmachineinstances-mutate',
      ephemeral((vmi) => (((vmi.spec.volumes as Obj[])[0].containerDisk as Obj).image = 5)),
      'spec.volumes[0].containerDisk.image',
    ],
    ['/virtualmachineinstances-mutate', ephemeral((vmi) => (vmi.spec.volumes = [null])), 'spec.volumes[0]'],
    ['/virtualmachineinstances-mutate', ephemeral((vmi) => (vmi.spec.domain = false)), 'spec.domain'],
    ['/virtualmachineinstances-validate-create', ephemeral((vmi) => (vmi.spec.networks = 5)), 'spec.networks'],
    ['/migration-mutate-create', { ...example<Obj>('migration-job.yaml'), metadata: 1 }, 'metadata'],
  ];
  for (const [path, object, field] of cases) {
    const response = answer(path, object);
    assert.equal(response.allowed, false, field);
    assert.equal(response.status?.code, 422, field);
    assert.deepEqual(causedAt(response), [field]);
  }
  const vm = example<VirtualMachine>('vm-cirros.yaml');
  (vm.spec.template!.metadata as Obj) = { annotations: 'x' };
  assert.deepEqual(causedAt(answer('/virtualmachines-mutate', vm)), ['spec.template.metadata.annotations']);
});

test("a quantity sent as a JSON number, even a fraction, is taken as Go's decoder takes it and written back as a string", () => {
  // Upstream's suite posts cpu 2.2 and memory 2222222.2 as numbers and expects the VM created.
  const vm = example<VirtualMachine>('vm-cirros.yaml');
  const domain = vm.spec.template!.spec!.domain as Obj;
  domain.resources = { requests: { cpu: 2.2, memory: 2222222.2 }, limits: { cpu: 2.2, memory: 2222222.2 } };
  const mutated = answer('/virtualmachines-mutate', vm);
  assert.equal(mutated.allowed, true, JSON.stringify(mutated.status));
  const ops = JSON.parse(Buffer.from(mutated.patch!, 'base64').toString()) as { path: string; value: unknown }[];
  const written = Object.fromEntries(ops.filter((op) => /resources\/(requests|limits)\//.test(op.path)).map((op) => [op.path, op.value]));
  assert.deepEqual(written, {
    '/spec/template/spec/domain/resources/requests/cpu': '2200m',
    '/spec/template/spec/domain/resources/requests/memory': '2222222200m',
    '/spec/template/spec/domain/resources/limits/cpu': '2200m',
    '/spec/template/spec/domain/resources/limits/memory': '2222222200m',
  });
  assert.equal(answer('/virtualmachines-validate', vm).allowed, true);
});

test('regression: a quantity the CRD pattern lets through but Go cannot parse is refused with its field', () => {
  // "1e1.5" matches the CRD's pattern; defaulting's isZeroQuantity threw a QuantityError on it.
  const vmi = ephemeral((v) => ((v.spec.domain as Obj).resources = { limits: { cpu: '1e1.5' } }));
  assert.deepEqual(causedAt(answer('/virtualmachineinstances-mutate', vmi)), ['spec.domain.resources.limits[cpu]']);
});

test('regression: a quantity with a huge exponent is refused at once instead of building a billion-digit number', () => {
  // This took over 30 s and then threw "Maximum BigInt size exceeded".
  const vmi = ephemeral((v) => ((v.spec.domain as Obj).memory = { guest: '1e999999999' }));
  const response = timed(
    'the mutating review',
    () => 'guest 1e999999999',
    () => answer('/virtualmachineinstances-mutate', vmi),
  );
  assert.deepEqual(causedAt(response), ['spec.domain.memory.guest']);
  assert.match(response.status!.message, /64-bit integer/);
});

test('regression: guest memory whose hotplug maximum overflows an int64 gets no maxGuest', () => {
  // 4 × the guest memory was written as maxGuest and then failed to parse, for the largest
  // int64 and for the smallest, which as a JSON number also printed as a value below it.
  for (const guest of ['9223372036854775807', -(2 ** 63)]) {
    const vmi = ephemeral((v) => ((v.spec.domain as Obj).memory = { guest }));
    const defaulted = defaultNewVmi(vmi as unknown as VirtualMachineInstance, CONFIGS[0], fixedContext());
    assert.equal(defaulted.spec.domain.memory?.maxGuest, undefined, String(guest));
    assert.equal(answer('/virtualmachineinstances-mutate', vmi).allowed, true, String(guest));
  }
  assert.equal(canonicalQuantity(2 ** 63 - 1024), '9223372036854774784');
});

test('regression: an update without its old object is a bad request, not a TypeError', () => {
  const vmi = example<Obj>('vmi-ephemeral.yaml');
  const migration = example<Obj>('migration-job.yaml');
  for (const [path, object] of [
    ['/virtualmachineinstances-mutate', vmi],
    ['/virtualmachineinstances-validate-update', vmi],
    ['/migration-validate-update', migration],
  ] as const) {
    const response = answer(path, object, { operation: 'UPDATE' });
    assert.equal(response.allowed, false, path);
    assert.equal(response.status?.code, 400, path);
    assert.equal(response.status?.message, 'the request carries no old object', path);
  }
});

test('regression: an array for the object is a bad request, not a cause without a field', () => {
  const response = answer('/virtualmachineinstances-validate-create', []);
  assert.equal(response.status?.code, 400);
  assert.equal(response.status?.message, 'the request carries no object');
});

test('regression: an architecture named like an Object.prototype member gets amd64 settings and is refused', () => {
  // "toString" looked up the cluster's machine types and emulated machines on Object.prototype:
  // the machine type defaulted to a function and validation threw "allowed.some is not a function".
  const vmi = ephemeral((v) => (v.spec.architecture = 'toString'));
  const defaulted = defaultNewVmi(vmi as unknown as VirtualMachineInstance, CONFIGS[0], fixedContext());
  assert.equal(defaulted.spec.domain.machine?.type, 'q35');
  assert.deepEqual(
    validateVmiCreate(defaulted, CONFIGS[0], USER).map((c) => [c.field, c.message]),
    [['spec.architecture', 'unsupported architecture: toString']],
  );
});

test('regression: a binding plugin named like an Object.prototype member does not exist', () => {
  const vmi = ephemeral((v) => {
    (v.spec.domain as { devices: Obj }).devices.interfaces = [{ name: 'default', binding: { name: 'toString' } }];
    v.spec.networks = [{ name: 'default', pod: {} }];
  });
  const defaulted = defaultNewVmi(vmi as unknown as VirtualMachineInstance, CONFIGS[0], fixedContext());
  assert.deepEqual(
    validateVmiCreate(defaulted, CONFIGS[0], USER).map((c) => c.field),
    ['spec.domain.devices.interfaces[0].binding.name'],
  );
});

test('regression: the patch for an object sent without metadata applies to that object', () => {
  // The handlers filled the metadata in place and diffed against that, so the patch added
  // /metadata/labels to an object that had no /metadata.
  const { metadata: _, ...migration } = example<Obj>('migration-job.yaml');
  const response = answer('/migration-mutate-create', migration);
  assert.equal(response.allowed, true);
  const ops = JSON.parse(Buffer.from(response.patch!, 'base64').toString());
  const patched = jsonpatch.applyPatch(structuredClone(migration), ops, true, false).newDocument as { metadata: Obj };
  assert.deepEqual(patched.metadata, {
    labels: { 'kubevirt.io/vmi-name': 'vmi-migratable' },
    finalizers: ['kubevirt.io/migrationJobFinalize'],
  });
});
