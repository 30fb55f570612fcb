// Create a VM: a containerDisk image or a DataVolume imported over HTTP(S), a cluster instance type (and optionally
// a preference) from the catalogue, cloud-init user data. The manifest is
// shown as YAML, editable, before it is sent.
import { parse, stringify } from 'yaml';
import { api } from './api.ts';
import { h, showError, showNotice } from './dom.ts';
import { checkCreateForm, type CreateForm, vmManifest, vmsPath } from './model.ts';

const DEFAULT_IMAGE = 'registry:5000/kubevirt/cirros-container-disk-demo:devel';
const DEFAULT_USER_DATA = '#!/bin/sh\necho "user-data says hello"\n';

interface Named {
  metadata: { name: string };
}

export function createPage(root: HTMLElement, ns: string): () => void {
  const field = (id: string, label: string, input: HTMLElement) => h('label', { for: id }, label, input);
  const name = h('input', { id: 'vm-name', required: true, placeholder: 'my-vm' });
  const diskSource = h(
    'select',
    { id: 'vm-disk-source' },
    h('option', { value: 'containerDisk' }, 'containerDisk image'),
    h('option', { value: 'dataVolume' }, 'DataVolume imported over HTTP(S)'),
  );
  const image = h('input', { id: 'vm-image', value: DEFAULT_IMAGE, size: '60' });
  const url = h('input', { id: 'vm-url', size: '60', placeholder: 'https://example.org/disk.qcow2' });
  const size = h('input', { id: 'vm-size', value: '2Gi', size: '8' });
  const instancetype = h('select', { id: 'vm-instancetype' });
  const preference = h('select', { id: 'vm-preference' }, h('option', { value: '' }, '(none)'));
  const userData = h('textarea', { id: 'vm-user-data', rows: '6', cols: '60' });
  userData.value = DEFAULT_USER_DATA;
  const start = h('input', { id: 'vm-start', type: 'checkbox' });
  const yaml = h('textarea', { id: 'vm-yaml', rows: '30', cols: '80', spellcheck: 'false' });
  const review = h('section', { id: 'vm-review', hidden: true }, h('h3', {}, 'The VirtualMachine to create'), yaml);
  const createButton = h('button', { type: 'button', id: 'vm-create', disabled: true }, 'Create');

  const form = (): CreateForm => ({
    name: name.value.trim(),
    namespace: ns,
    diskSource: diskSource.value === 'dataVolume' ? 'dataVolume' : 'containerDisk',
    image: image.value,
    url: url.value,
    size: size.value,
    instancetype: instancetype.value,
    preference: preference.value,
    userData: userData.value,
    start: start.checked,
  });
  const showYaml = () => {
    const errors = checkCreateForm(form());
    if (errors.length) return showError(errors.join('\n'));
    showError(undefined);
    yaml.value = stringify(vmManifest(form()));
    review.hidden = false;
    createButton.disabled = false;
  };
  createButton.addEventListener('click', async () => {
    showError(undefined);
    let manifest: { metadata?: { name?: string } };
    try {
      manifest = parse(yaml.value);
    } catch (error) {
      return showError(`the YAML does not parse: ${(error as Error).message}`);
    }
    try {
      await api('POST', vmsPath(ns), manifest);
      showNotice(`created ${manifest.metadata?.name}`);
      location.hash = `#/ns/${ns}/vms`;
    } catch (error) {
      showError(`create failed: ${(error as Error).message}`);
    }
  });

  const containerDiskFields = h('div', {}, field('vm-image', 'containerDisk image', image));
  const dataVolumeFields = h(
    'div',
    { hidden: true },
    field('vm-url', 'Disk image URL (raw or qcow2, may be gz/xz)', url),
    field('vm-size', 'Size', size),
  );
  diskSource.addEventListener('change', () => {
    containerDiskFields.hidden = diskSource.value !== 'containerDisk';
    dataVolumeFields.hidden = diskSource.value !== 'dataVolume';
  });
  root.append(
    h('h2', {}, `Create a virtual machine in ${ns}`),
    h(
      'div',
      { class: 'form' },
      field('vm-name', 'Name', name),
      field('vm-disk-source', 'Root disk', diskSource),
      containerDiskFields,
      dataVolumeFields,
      field('vm-instancetype', 'Instance type', instancetype),
      field('vm-preference', 'Preference', preference),
      field('vm-user-data', 'cloud-init user data', userData),
      h('label', { for: 'vm-start' }, start, ' start it once created'),
    ),
    h('button', { type: 'button', id: 'vm-review-yaml', onclick: showYaml }, 'Review YAML'),
    review,
    createButton,
  );

  const fill = (select: HTMLSelectElement, items: Named[], preferred: string) => {
    for (const item of items)
      select.append(h('option', { value: item.metadata.name, selected: item.metadata.name === preferred }, item.metadata.name));
  };
  void Promise.all([
    api<{ items: Named[] }>('GET', '/apis/instancetype.kubevirt.io/v1beta1/virtualmachineclusterinstancetypes'),
    api<{ items: Named[] }>('GET', '/apis/instancetype.kubevirt.io/v1beta1/virtualmachineclusterpreferences'),
  ]).then(
    ([types, preferences]) => {
      fill(instancetype, types.items, 'u1.nano');
      fill(preference, preferences.items, '');
    },
    (error: Error) => showError(`reading the instance type catalogue: ${error.message}`),
  );
  return () => {};
}
