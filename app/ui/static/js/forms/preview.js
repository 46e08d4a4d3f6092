// The live preview: the form as a citizen or officer would fill it, rendered from the
// definition. Conditional fields appear and disappear as the data changes (the same JSON
// Schema conditions the server evaluates); every input carries the JSON Pointer of its value,
// so the dry-run validation's errors land next to it.

import { h, show, uid } from '../dom.js';
import { t, text } from '../i18n.js';
import { button, field } from '../ui.js';
import { holds, optionsOf, resolve, widgetOf } from './model.js';

function optionLabel(ui, value) {
  const key = typeof value === 'string' ? value : JSON.stringify(value);
  return ui.option_labels?.[key] ? text(ui.option_labels[key]) : String(value);
}

/** A group of inputs (check boxes, an address) labelled by a legend, with an error line. */
function group(legend, pointer, children, { help, required } = {}) {
  const id = uid('grp');
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const helpEl = help ? h('p', { class: 'help', id: `${id}-help` }, help) : null;
  const box = h('fieldset', {
    id, class: 'preview-group', dataset: { pointer }, 'aria-describedby': [helpEl?.id, error.id].filter(Boolean).join(' '),
  }, h('legend', {}, legend, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null), helpEl, children, error);
  return box;
}

function scalarInput(schema, widget, pointer, onchange) {
  let input;
  if (widget === 'textarea') {
    input = h('textarea', { rows: 3 });
  } else if (widget === 'number' || schema.type === 'integer' || schema.type === 'number') {
    input = h('input', { type: 'number', step: schema.type === 'integer' ? '1' : 'any' });
  } else if (widget === 'date' || schema.format === 'date') {
    input = h('input', { type: 'date' });
  } else if (widget === 'checkbox' || schema.type === 'boolean') {
    input = h('input', { type: 'checkbox' });
  } else if (Array.isArray(schema.enum)) {
    input = h('select', {}, h('option', { value: '' }, t('forms.preview_choose')),
      schema.enum.map((v, i) => h('option', { value: String(i) }, String(v))));
  } else {
    input = h('input', {
      type: widget === 'email' ? 'email' : widget === 'phone' ? 'tel' : 'text',
      inputmode: widget === 'citizen-id' ? 'numeric' : null, maxlength: widget === 'citizen-id' ? '12' : null,
    });
  }
  input.dataset.pointer = pointer;
  input.addEventListener(input.type === 'checkbox' || input.tagName === 'SELECT' ? 'change' : 'input', onchange);
  input.readValue = () => {
    if (input.type === 'checkbox') return input.checked ? true : undefined;
    if (input.tagName === 'SELECT') return input.value === '' ? undefined : schema.enum[Number(input.value)];
    if (input.value === '') return undefined;
    if (input.type === 'number') return Number(input.value);
    return input.value;
  };
  return input;
}

/** Render `definition` into `container`; returns {data(), refresh()} . */
export function renderPreview(container, definition, units, onchange = () => {}) {
  const root = definition.schema;
  const fields = definition.ui_schema.fields;
  const readers = new Map(); // name → () => value
  const wraps = new Map(); // name → element to hide
  const changed = () => { refresh(); onchange(); };

  function build(name) {
    const ui = fields[name] || { label: { vi: name, en: name } };
    const schema = resolve(root.properties[name], root);
    const widget = widgetOf(definition, name);
    const label = text(ui.label);
    const help = ui.help ? text(ui.help) : null;
    const required = (root.required || []).includes(name) || ui.required_when_visible === true;
    const pointer = `/${name}`;
    if (widget === 'multiselect') {
      const values = optionsOf(definition, name) || [];
      const boxes = values.map((value) => {
        const box = h('input', { type: 'checkbox', id: uid('opt'), onchange: changed });
        return { value, box, el: h('div', { class: 'field inline' }, box, h('label', { for: box.id }, optionLabel(ui, value))) };
      });
      readers.set(name, () => {
        const chosen = boxes.filter((b) => b.box.checked).map((b) => b.value);
        return chosen.length ? chosen : undefined;
      });
      return group(label, pointer, boxes.map((b) => b.el), { help, required });
    }
    if (widget === 'select' || widget === 'radio') {
      const values = optionsOf(definition, name) || [];
      const select = h('select', { dataset: { pointer }, onchange: changed },
        h('option', { value: '' }, t('forms.preview_choose')),
        values.map((v, i) => h('option', { value: String(i) }, optionLabel(ui, v))));
      readers.set(name, () => (select.value === '' ? undefined : values[Number(select.value)]));
      return field(label, select, { help, required }).wrap;
    }
    if (widget === 'address') {
      const provinces = [...units.values()].filter((u) => u.kind === 'province').sort((a, b) => a.code.localeCompare(b.code));
      const province = h('select', { dataset: { pointer: `${pointer}/tinh` } }, h('option', { value: '' }, t('forms.preview_choose')),
        provinces.map((u) => h('option', { value: u.code }, `${u.name} (${u.code})`)));
      const commune = h('select', { dataset: { pointer: `${pointer}/xa` }, disabled: true }, h('option', { value: '' }, t('forms.preview_choose')));
      province.addEventListener('change', () => {
        const communes = [...units.values()].filter((u) => u.kind === 'commune' && u.parent === province.value)
          .sort((a, b) => a.name.localeCompare(b.name, 'vi'));
        show(commune, h('option', { value: '' }, t('forms.preview_choose')),
          communes.map((u) => h('option', { value: u.code }, `${u.name} (${u.code})`)));
        commune.disabled = !province.value;
        changed();
      });
      commune.addEventListener('change', changed);
      const detail = h('input', { type: 'text', dataset: { pointer: `${pointer}/chi_tiet` }, oninput: changed });
      readers.set(name, () => {
        const value = {};
        if (province.value) value.tinh = province.value;
        if (commune.value) value.xa = commune.value;
        if (detail.value) value.chi_tiet = detail.value;
        return Object.keys(value).length ? value : undefined;
      });
      return group(label, pointer, [
        field(t('forms.address_province'), province, { required: true }).wrap,
        field(t('forms.address_commune'), commune, { required: true }).wrap,
        field(t('forms.address_detail'), detail, { required: true }).wrap,
        provinces.length ? null : h('p', { class: 'help' }, t('forms.address_no_tree')),
      ], { help, required });
    }
    if (widget === 'file') {
      const input = h('input', { type: 'file', dataset: { pointer } });
      let value;
      input.addEventListener('change', async () => {
        const file = input.files[0];
        value = undefined;
        if (file) {
          const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
          value = {
            ten_tep: file.name, kich_thuoc: file.size, loai_noi_dung: file.type || 'application/octet-stream',
            sha256: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join(''),
          };
        }
        changed();
      });
      readers.set(name, () => value);
      return field(label, input, { help, required }).wrap;
    }
    if (widget === 'group' || (schema.type === 'array' && !optionsOf(definition, name))) {
      const itemSchema = resolve(schema.items, root);
      const subs = Object.entries(itemSchema.properties || {});
      const rows = [];
      const list = h('div', { class: 'preview-rows' });
      const addRow = () => {
        const index = rows.length;
        const inputs = subs.map(([sub, subSchema]) => {
          const resolved = resolve(subSchema, root);
          const input = scalarInput(resolved, null, `${pointer}/${index}/${sub}`, changed);
          const subLabel = resolved.title || sub;
          const built = field(subLabel, input, { required: (itemSchema.required || []).includes(sub) });
          if (input.type === 'checkbox') { built.wrap.classList.add('inline'); built.wrap.prepend(input); }
          return { sub, input, wrap: built.wrap };
        });
        const row = { inputs, el: h('fieldset', { class: 'preview-row' }, h('legend', {}, t('forms.group_row', { n: index + 1 })), inputs.map((i) => i.wrap)) };
        rows.push(row);
        list.append(row.el);
        changed();
      };
      const removeRow = () => { rows.pop()?.el.remove(); changed(); };
      readers.set(name, () => {
        if (!rows.length) return undefined;
        return rows.map((row) => Object.fromEntries(row.inputs.map((i) => [i.sub, i.input.readValue()]).filter(([, v]) => v !== undefined)));
      });
      return group(label, pointer, [list, h('div', { class: 'row' },
        button(t('forms.group_add_row'), addRow), button(t('forms.group_remove_row'), removeRow))], { help, required });
    }
    const input = scalarInput(schema, widget, pointer, changed);
    readers.set(name, () => input.readValue());
    if (input.type === 'checkbox') {
      const built = field(label, input, { help, required });
      built.wrap.classList.add('inline');
      built.wrap.prepend(input);
      return built.wrap;
    }
    if (ui.placeholder) input.placeholder = text(ui.placeholder);
    return field(label, input, { help, required }).wrap;
  }

  const names = Object.keys(root.properties || {});
  const order = [...(definition.ui_schema.order || []).filter((n) => names.includes(n)),
    ...names.filter((n) => !(definition.ui_schema.order || []).includes(n))];
  const sections = definition.ui_schema.sections || [];
  const sectioned = new Set(sections.flatMap((s) => s.fields));
  const place = (name) => {
    const el = build(name);
    wraps.set(name, el);
    return el;
  };
  const form = h('form', { class: 'preview-form', novalidate: true, onsubmit: (e) => e.preventDefault() },
    order.filter((n) => !sectioned.has(n)).map(place),
    sections.map((section) => h('fieldset', { class: 'preview-section' }, h('legend', {}, text(section.title)),
      section.fields.filter((n) => names.includes(n)).map(place))));
  container.replaceChildren(form);

  function data() {
    const value = {};
    for (const [name, read] of readers) {
      if (wraps.get(name)?.hidden) continue;
      const v = read();
      if (v !== undefined) value[name] = v;
    }
    return value;
  }

  function refresh() {
    // Visibility depends on the data of visible fields; two passes settle chains of conditions.
    for (let pass = 0; pass < 2; pass += 1) {
      const current = data();
      for (const [name, wrap] of wraps) {
        const condition = fields[name]?.visible_when;
        wrap.hidden = condition === undefined ? false : !holds(condition, current, root);
      }
    }
  }

  refresh();
  return { form, data, refresh };
}
