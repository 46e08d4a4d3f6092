// The form builder: a palette of field types, the ordered list of fields (drag, or the
// keyboard: move buttons and Alt+ArrowUp/Down), a properties panel with point-and-click
// visibility rules, a live preview checked by the server's dry run, a JSON tab for experts,
// and the draft → publish → versions → diff lifecycle.

import { api, ApiError, unitPath } from '../api.js';
import { append, h, show } from '../dom.js';
import { t, text } from '../i18n.js';
import { button, clearErrors, field, heading, input, notice, problemBanner, select, showProblem, tabs } from '../ui.js';
import {
  FIELD_TYPES, NAME_PATTERN, clone, conditionToRule, dependents, fieldOfPointer, freshName, fromDefinition,
  isRequired, locate, newSchema, newUi, optionsOf, parseJson, rename, resolve, ruleToCondition, setRequired,
  toDefinition, widgetOf,
} from './model.js';
import { renderPreview } from './preview.js';
import { renderVersions } from './versions.js';

const TABS = ['design', 'preview', 'json', 'versions'];

/** {vi, en} from two inputs; a text needs both, so one filled in stands for the other. */
function bilingual(vi, en) {
  const a = vi.trim();
  const b = en.trim();
  if (!a && !b) return undefined;
  return { vi: a || b, en: b || a };
}

function numberOrUndefined(value) {
  if (value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : NaN;
}

export async function renderBuilder(view, key, initialTab) {
  const formPath = unitPath(view.unit, 'forms', key);
  const state = {
    form: await api.get(formPath),
    model: null,
    selected: null,
    dirty: false,
    tab: TABS.includes(initialTab) ? initialTab : 'design',
    jsonText: null,
  };
  view.guard(() => state.dirty);
  state.model = fromDefinition(state.form.definition);
  const editable = () => !state.form.inherited && view.can('forms:write');

  const status = h('p', { class: 'fb-status', id: 'fb-status', 'aria-live': 'polite' });
  const messages = h('div', { id: 'fb-messages', 'aria-live': 'polite' });
  const announcer = h('p', { class: 'visually-hidden', id: 'fb-announce', role: 'status', 'aria-live': 'polite' });
  const panel = h('div', { role: 'tabpanel', id: 'fb-panel', class: 'fb-panel' });
  const tabBar = h('div');
  const def = () => state.model.definition;
  let head = null;

  // ---- header, status and lifecycle -------------------------------------------------------

  function title() {
    return `${text(def().title) || key} (${key})`;
  }

  function renderStatus() {
    const form = state.form;
    const parts = [
      form.inherited ? t('forms.inherited_from', { unit: form.tenant || '—' }) : t('forms.own'),
      form.latest_version ? t('forms.current_version', { n: form.latest_version }) : t('forms.never_published'),
      form.draft_version ? t('forms.draft_version', { n: form.draft_version }) : null,
      state.dirty ? t('forms.unsaved') : null,
    ].filter(Boolean);
    show(status, parts.join(' · '));
    if (head) head.querySelector('h1').textContent = title();
    status.classList.toggle('dirty', state.dirty);
  }

  function touched() {
    state.dirty = true;
    renderStatus();
  }

  async function reloadForm() {
    state.form = await api.get(formPath);
    renderStatus();
  }

  /** The definition to send: from the JSON tab when it is open, else the visual editor's. */
  function currentDefinition() {
    if (state.tab === 'json' && state.jsonText !== null) {
      const parsed = parseJson(state.jsonText);
      if (parsed.error) {
        showJsonSyntaxError(parsed.error);
        return null;
      }
      return parsed.value;
    }
    return toDefinition(state.model);
  }

  async function save() {
    const definition = currentDefinition();
    if (!definition) return false;
    clearErrors(view.main);
    messages.replaceChildren();
    try {
      const path = unitPath(view.unit, 'forms', key, 'versions');
      const saved = state.form.draft_version
        ? await api.put(`${path}/${state.form.draft_version}`, definition)
        : await api.post(path, definition);
      if (state.tab === 'json') {
        state.model = fromDefinition(definition);
        state.selected = null;
        state.jsonText = null;
        renderJsonErrors([]);
      }
      state.dirty = false;
      await reloadForm();
      show(messages, notice(t('forms.saved', { n: saved.number })));
      return true;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      showSaveErrors(err);
      return false;
    }
  }

  async function publish() {
    if (state.dirty && !(await save())) return;
    if (!state.form.draft_version) {
      show(messages, notice(t('forms.nothing_to_publish'), 'warn'));
      return;
    }
    const number = state.form.draft_version;
    try {
      const published = await api.post(unitPath(view.unit, 'forms', key, 'versions', String(number), 'publish'));
      await reloadForm();
      show(messages, notice(published.variants_flagged
        ? t('forms.published_flagged', { n: number, count: published.variants_flagged })
        : t('forms.published', { n: number })));
      if (state.tab === 'versions') await renderTab();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      showSaveErrors(err);
    }
  }

  async function createVariant() {
    try {
      await api.post(unitPath(view.unit, 'forms'), state.form.definition);
      await view.refresh();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(messages, problemBanner(err));
    }
  }

  function showSaveErrors(err) {
    if (state.tab === 'json') {
      show(messages, problemBanner(err));
      renderJsonErrors(err.errors || []);
      return;
    }
    messages.replaceChildren();
    const scope = panel;
    const banner = showProblem(scope, err, messages);
    // Unplaced errors name a field: offer to open it.
    for (const li of banner.querySelectorAll('li[data-pointer]')) {
      const name = fieldOfPointer(li.dataset.pointer);
      const index = state.model.items.findIndex((i) => i.kind === 'field' && i.name === name);
      if (index >= 0) {
        li.append(' ', button(t('forms.go_to_field', { name }), () => { selectItem(index); }, { kind: 'link' }));
      }
    }
    const names = new Set((err.errors || []).map((e) => fieldOfPointer(e.pointer)).filter(Boolean));
    for (const li of panel.querySelectorAll('.fb-item')) li.classList.toggle('has-error', names.has(li.dataset.name));
  }

  // ---- the design tab ---------------------------------------------------------------------

  const list = h('ol', { class: 'fb-list', id: 'fb-list', 'aria-labelledby': 'fb-fields-title' });
  const props = h('section', { class: 'card fb-props', id: 'fb-props', 'aria-labelledby': 'fb-props-title' });

  function itemLabel(item) {
    if (item.kind === 'section') return text(item.title) || item.id;
    return text(def().ui_schema.fields[item.name]?.label) || item.name;
  }

  function insertField(widget, at = null) {
    const index = at ?? (state.selected === null ? state.model.items.length : state.selected + 1);
    if (widget === 'section') {
      let n = state.model.items.filter((i) => i.kind === 'section').length + 1;
      while (state.model.items.some((i) => i.kind === 'section' && i.id === `muc_${n}`)) n += 1;
      state.model.items.splice(index, 0, { kind: 'section', id: `muc_${n}`, title: { vi: `Mục ${n}`, en: `Section ${n}` } });
    } else {
      const { name, n } = freshName(def());
      def().schema.properties[name] = newSchema(widget);
      def().ui_schema.fields[name] = newUi(widget, n);
      state.model.items.splice(index, 0, { kind: 'field', name });
    }
    touched();
    selectItem(index);
    announce(t('forms.added', { label: itemLabel(state.model.items[index]), type: t(`forms.type_${widget}`) }));
  }

  function move(from, to, focusOn = '.fb-pick') {
    const items = state.model.items;
    if (to < 0 || to >= items.length || from === to) return;
    const [item] = items.splice(from, 1);
    items.splice(to, 0, item);
    if (state.selected === from) state.selected = to;
    else if (state.selected !== null && from < state.selected && to >= state.selected) state.selected -= 1;
    else if (state.selected !== null && from > state.selected && to <= state.selected) state.selected += 1;
    touched();
    renderList();
    const target = list.querySelector(`[data-index="${to}"] ${focusOn}`);
    (target && !target.disabled ? target : list.querySelector(`[data-index="${to}"] .fb-pick`))?.focus();
    announce(t('forms.moved', { label: itemLabel(item), position: to + 1, total: items.length }));
  }

  function remove(index) {
    const item = state.model.items[index];
    const label = itemLabel(item);
    if (item.kind === 'field') {
      delete def().schema.properties[item.name];
      delete def().ui_schema.fields[item.name];
      setRequired(def(), item.name, false);
      // Conditions on the removed field could never hold again: they go with it.
      for (const other of dependents(def(), item.name)) {
        delete def().ui_schema.fields[other].visible_when;
        delete def().ui_schema.fields[other].required_when_visible;
      }
    }
    state.model.items.splice(index, 1);
    state.selected = null;
    touched();
    renderList();
    renderProps();
    announce(t('forms.removed', { label }));
    const next = list.querySelector(`[data-index="${Math.min(index, state.model.items.length - 1)}"] .fb-pick`);
    (next || list.closest('section'))?.focus();
  }

  /** Run `fn` (which redraws) once focus has moved on, and put focus back where it went. */
  function refocusLater(fn) {
    setTimeout(() => {
      const id = document.activeElement?.id;
      fn();
      if (id) document.getElementById(id)?.focus();
    });
  }

  function announce(message) {
    announcer.textContent = '';
    // A new text node each time, so screen readers announce a repeated message too.
    setTimeout(() => { announcer.textContent = message; }, 30);
  }

  function selectItem(index) {
    state.selected = index;
    renderList();
    renderProps();
    list.querySelector(`[data-index="${index}"] .fb-pick`)?.focus();
  }

  let dragged = null;

  function renderList() {
    const items = state.model.items;
    list.replaceChildren(...items.map((item, index) => {
      const label = itemLabel(item);
      const badges = [];
      if (item.kind === 'field') {
        const ui = def().ui_schema.fields[item.name] || {};
        if (isRequired(def(), item.name)) badges.push(['req', t('forms.badge_required')]);
        if (ui.visible_when !== undefined) badges.push(['cond', ui.required_when_visible ? t('forms.badge_conditional_required') : t('forms.badge_conditional')]);
        if (ui.personal_data && ui.personal_data !== 'none') badges.push(['pd', t(`forms.pd_${ui.personal_data}`)]);
      }
      const widget = item.kind === 'section' ? 'section' : widgetOf(def(), item.name);
      const li = h('li', {
        class: `fb-item fb-${item.kind}${state.selected === index ? ' selected' : ''}`,
        dataset: { index: String(index), name: item.kind === 'field' ? item.name : '' },
        draggable: editable() ? 'true' : null,
      },
      h('button', {
        type: 'button', class: 'fb-pick', 'aria-pressed': String(state.selected === index),
        'aria-keyshortcuts': editable() ? 'Alt+ArrowUp Alt+ArrowDown' : null,
        onclick: () => selectItem(index),
      },
      h('span', { class: 'fb-label' }, label), ' ',
      h('span', { class: 'fb-type muted' }, t(`forms.type_${widget}`), item.kind === 'field' ? ` · ${item.name}` : ''),
      badges.map(([kind, textValue]) => [' ', h('span', { class: `badge fb-badge-${kind}` }, textValue)])),
      editable() ? h('span', { class: 'fb-item-actions' },
        button('↑', () => move(index, index - 1, '.fb-up'), { class: 'fb-up', 'aria-label': t('forms.move_up', { label }), disabled: index === 0 }),
        button('↓', () => move(index, index + 1, '.fb-down'), { class: 'fb-down', 'aria-label': t('forms.move_down', { label }), disabled: index === items.length - 1 }),
        button('✕', () => remove(index), { class: 'fb-remove danger', 'aria-label': t('forms.remove', { label }) })) : null);
      li.addEventListener('keydown', (event) => {
        if (!editable() || !event.altKey || !['ArrowUp', 'ArrowDown'].includes(event.key)) return;
        event.preventDefault();
        move(index, index + (event.key === 'ArrowUp' ? -1 : 1));
      });
      li.addEventListener('dragstart', (event) => {
        dragged = index;
        event.dataTransfer.effectAllowed = 'move';
        event.dataTransfer.setData('text/plain', String(index));
        li.classList.add('dragging');
      });
      li.addEventListener('dragend', () => { dragged = null; li.classList.remove('dragging'); });
      li.addEventListener('dragover', (event) => { event.preventDefault(); li.classList.add('drop-target'); });
      li.addEventListener('dragleave', () => li.classList.remove('drop-target'));
      li.addEventListener('drop', (event) => {
        event.preventDefault();
        event.stopPropagation();
        li.classList.remove('drop-target');
        const widgetDropped = event.dataTransfer.getData('application/x-nentang-widget');
        if (widgetDropped) insertField(widgetDropped, index);
        else if (dragged !== null) move(dragged, index);
      });
      return li;
    }));
    if (!items.length) list.append(h('li', { class: 'empty' }, t('forms.no_fields')));
  }

  list.addEventListener('dragover', (event) => event.preventDefault());
  list.addEventListener('drop', (event) => {
    event.preventDefault();
    const widgetDropped = event.dataTransfer.getData('application/x-nentang-widget');
    if (widgetDropped) insertField(widgetDropped, state.model.items.length);
    else if (dragged !== null) move(dragged, state.model.items.length - 1);
  });

  function palette() {
    return h('section', { class: 'card fb-palette', 'aria-labelledby': 'fb-palette-title' },
      h('h2', { id: 'fb-palette-title' }, t('forms.palette')),
      h('p', { class: 'help' }, t('forms.palette_help')),
      h('ul', {}, FIELD_TYPES.map((widget) => h('li', {},
        h('button', {
          type: 'button', class: 'fb-add', draggable: 'true', dataset: { widget },
          onclick: () => insertField(widget),
          ondragstart: (event) => {
            event.dataTransfer.effectAllowed = 'copy';
            event.dataTransfer.setData('application/x-nentang-widget', widget);
          },
        }, `+ ${t(`forms.type_${widget}`)}`)))));
  }

  // ---- the properties panel -----------------------------------------------------------------

  function textPair(labelKey, value, onvalue, { pointer, required, idBase } = {}) {
    const vi = field(t(`forms.${labelKey}_vi`), input({ value: value?.vi || '', id: `${idBase}-vi`, disabled: !editable() }),
      { pointer: pointer ? `${pointer}/vi` : undefined, required });
    const en = field(t(`forms.${labelKey}_en`), input({ value: value?.en || '', id: `${idBase}-en`, disabled: !editable() }),
      { pointer: pointer ? `${pointer}/en` : undefined, required });
    // Both emptied: sent as empty texts, so the server's error lands on these inputs.
    const changed = () => { onvalue(bilingual(vi.input.value, en.input.value)); touched(); renderList(); };
    vi.input.addEventListener('input', changed);
    en.input.addEventListener('input', changed);
    return h('div', { class: 'fb-pair' }, vi.wrap, en.wrap);
  }

  function formSettings() {
    const d = def();
    return [
      h('h2', { id: 'fb-props-title' }, t('forms.form_settings')),
      h('p', { class: 'help' }, t('forms.form_settings_help')),
      textPair('form_title', d.title, (v) => { d.title = v || { vi: '', en: '' }; }, { pointer: '/title', required: true, idBase: 'prop-form-title' }),
      textPair('form_description', d.description, (v) => { if (v) d.description = v; else delete d.description; },
        { pointer: '/description', idBase: 'prop-form-description' }),
    ];
  }

  function sectionProps(item) {
    const id = field(t('forms.section_id'), input({ value: item.id, id: 'prop-section-id', disabled: !editable() }),
      { help: t('forms.section_id_help'), required: true });
    id.input.addEventListener('change', () => {
      const value = id.input.value.trim();
      if (!/^[a-z][a-z0-9_-]{0,63}$/.test(value) || state.model.items.some((i) => i !== item && i.kind === 'section' && i.id === value)) {
        localError(id, t('forms.section_id_invalid'));
        return;
      }
      localError(id, null);
      item.id = value;
      touched();
      renderList();
    });
    return [
      h('h2', { id: 'fb-props-title' }, t('forms.section_props', { label: itemLabel(item) })),
      id.wrap,
      textPair('section_title', item.title, (v) => { item.title = v || { vi: '', en: '' }; }, { required: true, idBase: 'prop-section-title' }),
    ];
  }

  function localError(built, message) {
    built.error.hidden = !message;
    built.error.textContent = message || '';
    if (message) built.input.setAttribute('aria-invalid', 'true');
    else built.input.removeAttribute('aria-invalid');
  }

  function fieldProps(item) {
    const d = def();
    let name = item.name;
    const ui = d.ui_schema.fields[name];
    const raw = d.schema.properties[name];
    const inline = raw && typeof raw.$ref !== 'string';
    const schema = resolve(raw, d.schema);
    const widget = widgetOf(d, name);
    const base = `/ui_schema/fields/${name}`;
    const parts = [h('h2', { id: 'fb-props-title' }, t('forms.field_props', { label: itemLabel(item) })),
      h('p', { class: 'muted' }, t('forms.field_type', { type: t(`forms.type_${widget}`) }))];

    const nameField = field(t('forms.field_name'), input({ value: name, id: 'prop-name', autocomplete: 'off', disabled: !editable() }),
      { help: t('forms.field_name_help'), required: true, pointer: `/schema/properties/${name}` });
    nameField.input.addEventListener('change', () => {
      const value = nameField.input.value.trim();
      if (value === name) return;
      if (!NAME_PATTERN.test(value)) { localError(nameField, t('forms.field_name_invalid')); return; }
      if (d.schema.properties[value]) { localError(nameField, t('forms.field_name_taken')); return; }
      localError(nameField, null);
      rename(state.model, name, value);
      name = value;
      touched();
      renderList();
      refocusLater(() => renderProps());
    });
    parts.push(nameField.wrap);
    parts.push(textPair('label', ui.label, (v) => { ui.label = v || { vi: '', en: '' }; }, { pointer: `${base}/label`, required: true, idBase: 'prop-label' }));
    parts.push(textPair('help', ui.help, (v) => { if (v) ui.help = v; else delete ui.help; }, { pointer: `${base}/help`, idBase: 'prop-help' }));

    // Required: always, or only when shown (a conditional field may not be required outright).
    const conditional = ui.visible_when !== undefined;
    if (!conditional) {
      const box = h('input', { type: 'checkbox', id: 'prop-required', checked: isRequired(d, name), disabled: !editable() });
      box.addEventListener('change', () => { setRequired(d, name, box.checked); touched(); renderList(); });
      parts.push(h('div', { class: 'field inline' }, box, h('label', { for: box.id }, t('forms.required'))));
    }

    // Bounds and pattern, by the kind of value.
    if (inline && ['text', 'textarea', 'citizen-id', 'email', 'phone', 'number', 'multiselect', 'group'].includes(widget)) {
      const [minKey, maxKey, labelKey] = schema.type === 'array' ? ['minItems', 'maxItems', 'items']
        : ['number', 'integer'].includes(schema.type) ? ['minimum', 'maximum', 'value'] : ['minLength', 'maxLength', 'length'];
      const bound = (keyword, id) => {
        const built = field(t(`forms.${keyword.startsWith('min') ? 'min' : 'max'}_${labelKey}`),
          input({ type: 'number', id, value: raw[keyword] ?? '', disabled: !editable() }), { pointer: `/schema/properties/${name}/${keyword}` });
        built.input.addEventListener('input', () => {
          const value = numberOrUndefined(built.input.value);
          if (Number.isNaN(value)) { localError(built, t('forms.not_a_number')); return; }
          localError(built, null);
          if (value === undefined) delete raw[keyword]; else raw[keyword] = value;
          touched();
        });
        return built.wrap;
      };
      parts.push(h('div', { class: 'fb-pair' }, bound(minKey, 'prop-min'), bound(maxKey, 'prop-max')));
      if (schema.type === 'string' || (!schema.type && widget !== 'multiselect' && widget !== 'group' && widget !== 'number')) {
        const pattern = field(t('forms.pattern'), input({ id: 'prop-pattern', value: raw.pattern || '', class: 'code', disabled: !editable() }),
          { help: t('forms.pattern_help'), pointer: `/schema/properties/${name}/pattern` });
        pattern.input.addEventListener('input', () => {
          const value = pattern.input.value;
          try {
            if (value) new RegExp(value, 'u'); // eslint-disable-line no-new
            localError(pattern, null);
          } catch {
            localError(pattern, t('forms.pattern_invalid'));
          }
          if (value) raw.pattern = value; else delete raw.pattern;
          touched();
        });
        parts.push(pattern.wrap);
      }
    }

    if (widget === 'select' || widget === 'multiselect' || widget === 'radio') parts.push(optionsEditor(name, ui, raw));
    if (widget === 'group') parts.push(groupEditor(name, raw));

    const pd = field(t('forms.personal_data'), select(['none', 'basic', 'sensitive'].map((v) => [v, t(`forms.pd_${v}`)]),
      { id: 'prop-personal-data', value: ui.personal_data || 'none', disabled: !editable() }),
    { help: t('forms.personal_data_help'), pointer: `${base}/personal_data` });
    pd.input.addEventListener('change', () => {
      if (pd.input.value === 'none') delete ui.personal_data; else ui.personal_data = pd.input.value;
      touched();
      renderList();
    });
    parts.push(pd.wrap);
    parts.push(ruleEditor(name, ui));
    if (editable()) {
      parts.push(h('div', { class: 'row' }, button(t('forms.remove_field'), () => remove(state.selected), { kind: 'danger', id: 'prop-remove' })));
    }
    return parts;
  }

  function optionsEditor(name, ui, raw) {
    const d = def();
    const holder = raw.type === 'array' ? raw.items : raw;
    const box = h('fieldset', { class: 'fb-options', id: 'prop-options', dataset: { pointer: `/ui_schema/fields/${name}/option_labels` } },
      h('legend', {}, t('forms.options')));
    if (!holder || !Array.isArray(holder.enum)) {
      box.append(h('p', { class: 'help' }, t('forms.options_elsewhere')));
      return box;
    }
    ui.option_labels ||= {};
    const rows = h('div', { class: 'fb-option-rows' });
    const draw = () => {
      rows.replaceChildren(...holder.enum.map((value, index) => {
        const labels = ui.option_labels[value] || {};
        const valueInput = field(t('forms.option_value', { n: index + 1 }), input({ value: String(value), id: `prop-option-${index}-value`, class: 'code', disabled: !editable() }));
        const vi = field(t('forms.option_label_vi', { n: index + 1 }), input({ value: labels.vi || '', id: `prop-option-${index}-vi`, disabled: !editable() }));
        const en = field(t('forms.option_label_en', { n: index + 1 }), input({ value: labels.en || '', id: `prop-option-${index}-en`, disabled: !editable() }));
        valueInput.input.addEventListener('change', () => {
          const next = valueInput.input.value.trim();
          if (!next || (next !== holder.enum[index] && holder.enum.includes(next))) {
            localError(valueInput, t('forms.option_value_invalid'));
            return;
          }
          localError(valueInput, null);
          const old = holder.enum[index];
          holder.enum[index] = next;
          ui.option_labels = Object.fromEntries(Object.entries(ui.option_labels).map(([k, v]) => [k === String(old) ? next : k, v]));
          // Conditions that compared the source with the old value follow the new one.
          for (const other of Object.values(d.ui_schema.fields)) {
            const rule = conditionToRule(other.visible_when);
            if (rule && rule.field === name && rule.value === old) other.visible_when = ruleToCondition({ ...rule, value: next });
          }
          // The row already shows the new value: no redraw, so typing on into the next
          // input never lands in a row that is being replaced.
          touched();
        });
        const labelChanged = () => {
          const pair = bilingual(vi.input.value, en.input.value);
          ui.option_labels[String(holder.enum[index])] = pair || { vi: String(holder.enum[index]), en: String(holder.enum[index]) };
          touched();
        };
        vi.input.addEventListener('input', labelChanged);
        en.input.addEventListener('input', labelChanged);
        return h('div', { class: 'fb-option' }, valueInput.wrap, vi.wrap, en.wrap,
          editable() ? button('✕', () => {
            if (holder.enum.length <= 1) return;
            const [old] = holder.enum.splice(index, 1);
            delete ui.option_labels[String(old)];
            touched();
            draw();
          }, { class: 'danger', 'aria-label': t('forms.option_remove', { n: index + 1 }), disabled: holder.enum.length <= 1 }) : null);
      }));
    };
    draw();
    box.append(rows);
    if (editable()) {
      box.append(button(t('forms.option_add'), () => {
        let n = holder.enum.length + 1;
        while (holder.enum.includes(`lua_chon_${n}`)) n += 1;
        const value = `lua_chon_${n}`;
        holder.enum.push(value);
        ui.option_labels[value] = { vi: `Lựa chọn ${n}`, en: `Option ${n}` };
        touched();
        draw();
        rows.querySelector(`#prop-option-${holder.enum.length - 1}-value`)?.focus();
      }, { id: 'prop-option-add' }));
    }
    return box;
  }

  const SUB_TYPES = { text: { type: 'string', maxLength: 200 }, number: { type: 'number' }, date: { type: 'string', format: 'date' },
    checkbox: { type: 'boolean' }, 'citizen-id': { type: 'string', pattern: '^[0-9]{12}$' } };

  function subType(schema) {
    if (schema.type === 'boolean') return 'checkbox';
    if (schema.type === 'number' || schema.type === 'integer') return 'number';
    if (schema.format === 'date') return 'date';
    if (schema.pattern === '^[0-9]{12}$') return 'citizen-id';
    return 'text';
  }

  function groupEditor(name, raw) {
    const box = h('fieldset', { class: 'fb-group', id: 'prop-group' }, h('legend', {}, t('forms.group_fields')));
    const items = raw.items;
    if (!items || typeof items.$ref === 'string' || !items.properties) {
      box.append(h('p', { class: 'help' }, t('forms.options_elsewhere')));
      return box;
    }
    const rows = h('div');
    const draw = () => {
      rows.replaceChildren(...Object.entries(items.properties).map(([sub, schema], index) => {
        const label = field(t('forms.group_sub_label', { n: index + 1 }), input({ value: schema.title || '', id: `prop-sub-${index}-label`, disabled: !editable() }));
        label.input.addEventListener('input', () => { if (label.input.value.trim()) schema.title = label.input.value.trim(); else delete schema.title; touched(); });
        const type = field(t('forms.group_sub_type', { n: index + 1 }), select(Object.keys(SUB_TYPES).map((k) => [k, t(`forms.type_${k}`)]),
          { value: subType(schema), id: `prop-sub-${index}-type`, disabled: !editable() }));
        type.input.addEventListener('change', () => {
          const title = schema.title;
          items.properties[sub] = { ...clone(SUB_TYPES[type.input.value]), ...(title ? { title } : {}) };
          touched();
          draw();
        });
        const req = h('input', { type: 'checkbox', id: `prop-sub-${index}-required`, checked: (items.required || []).includes(sub), disabled: !editable() });
        req.addEventListener('change', () => {
          items.required = (items.required || []).filter((n) => n !== sub);
          if (req.checked) items.required.push(sub);
          touched();
        });
        return h('div', { class: 'fb-option' }, h('code', {}, sub), label.wrap, type.wrap,
          h('div', { class: 'field inline' }, req, h('label', { for: req.id }, t('forms.required'))),
          editable() ? button('✕', () => {
            delete items.properties[sub];
            items.required = (items.required || []).filter((n) => n !== sub);
            touched();
            draw();
          }, { class: 'danger', 'aria-label': t('forms.group_sub_remove', { n: index + 1 }) }) : null);
      }));
      if (!Object.keys(items.properties).length) rows.append(h('p', { class: 'help' }, t('forms.group_empty')));
    };
    draw();
    box.append(rows);
    if (editable()) {
      box.append(button(t('forms.group_sub_add'), () => {
        let n = Object.keys(items.properties).length + 1;
        while (items.properties[`cot_${n}`]) n += 1;
        items.properties[`cot_${n}`] = { type: 'string', maxLength: 200, title: `Cột ${n}` };
        touched();
        draw();
      }, { id: 'prop-sub-add' }));
    }
    return box;
  }

  /** "Show this field only when <field> <equals|differs from|includes> <value>", and "required when shown". */
  function ruleEditor(name, ui) {
    const d = def();
    const box = h('fieldset', { class: 'fb-rule', id: 'prop-rule', dataset: { pointer: `/ui_schema/fields/${name}/visible_when` } },
      h('legend', {}, t('forms.visibility')));
    const sources = state.model.items.filter((i) => i.kind === 'field' && i.name !== name
      && ['text', 'number', 'select', 'radio', 'multiselect', 'checkbox', 'date', 'citizen-id', 'email', 'phone', 'textarea'].includes(widgetOf(d, i.name)));
    const rule = ui.visible_when === undefined ? null : conditionToRule(ui.visible_when);
    const always = h('input', { type: 'checkbox', id: 'prop-conditional', checked: ui.visible_when !== undefined, disabled: !editable() || (!sources.length && ui.visible_when === undefined) });
    box.append(h('div', { class: 'field inline' }, always, h('label', { for: always.id }, t('forms.conditional'))));
    if (!sources.length && ui.visible_when === undefined) box.append(h('p', { class: 'help' }, t('forms.conditional_no_sources')));
    always.addEventListener('change', () => {
      if (always.checked) {
        const source = sources[0].name;
        const values = optionsOf(d, source);
        const sourceWidget = widgetOf(d, source);
        ui.visible_when = ruleToCondition({ field: source, op: sourceWidget === 'multiselect' ? 'contains' : 'equals',
          value: sourceWidget === 'checkbox' ? true : values ? values[0] : '' });
        // A conditional field cannot be required outright: it becomes "required when shown".
        if (isRequired(d, name)) { setRequired(d, name, false); ui.required_when_visible = true; }
      } else {
        // Back to an unconditional field: "required when shown" becomes plain "required".
        if (ui.required_when_visible) setRequired(d, name, true);
        delete ui.visible_when;
        delete ui.required_when_visible;
      }
      touched();
      renderList();
      renderProps('prop-conditional');
    });
    if (ui.visible_when === undefined) return box;
    if (!rule) {
      box.append(h('p', { class: 'help' }, t('forms.custom_condition')), h('pre', { class: 'code fb-condition' }, JSON.stringify(ui.visible_when, null, 2)));
    } else {
      const sourceField = field(t('forms.rule_field'), select(sources.map((i) => [i.name, `${itemLabel(i)} (${i.name})`]),
        { value: rule.field, id: 'prop-rule-field', disabled: !editable() }));
      if (!sources.some((i) => i.name === rule.field)) sourceField.input.prepend(h('option', { value: rule.field, selected: true }, rule.field));
      const sourceWidget = widgetOf(d, rule.field);
      const ops = sourceWidget === 'multiselect' ? ['contains'] : ['equals', 'not_equals'];
      const op = field(t('forms.rule_op'), select(ops.map((o) => [o, t(`forms.op_${o}`)]), { value: rule.op, id: 'prop-rule-op', disabled: !editable() }));
      const values = sourceWidget === 'checkbox' ? [true, false] : optionsOf(d, rule.field);
      const sourceUi = d.ui_schema.fields[rule.field] || {};
      let valueInput;
      if (values) {
        const label = (v) => (v === true ? t('common.yes') : v === false ? t('common.no')
          : sourceUi.option_labels?.[String(v)] ? `${text(sourceUi.option_labels[String(v)])} (${v})` : String(v));
        valueInput = select(values.map((v, i) => [String(i), label(v)]), { id: 'prop-rule-value', disabled: !editable(),
          value: String(Math.max(0, values.findIndex((v) => JSON.stringify(v) === JSON.stringify(rule.value)))) });
        valueInput.readValue = () => values[Number(valueInput.value)];
      } else {
        const numeric = sourceWidget === 'number';
        valueInput = input({ id: 'prop-rule-value', type: numeric ? 'number' : 'text', value: String(rule.value ?? ''), disabled: !editable() });
        valueInput.readValue = () => (numeric && valueInput.value !== '' ? Number(valueInput.value) : valueInput.value);
      }
      const value = field(t('forms.rule_value'), valueInput);
      const update = (rerender) => {
        const nextField = sourceField.input.value;
        const fieldChanged = nextField !== rule.field;
        let nextValue = valueInput.readValue();
        let nextOp = op.input.value;
        if (fieldChanged) {
          const w = widgetOf(d, nextField);
          const opts = w === 'checkbox' ? [true] : optionsOf(d, nextField);
          nextValue = opts ? opts[0] : '';
          nextOp = w === 'multiselect' ? 'contains' : 'equals';
        }
        ui.visible_when = ruleToCondition({ field: nextField, op: nextOp, value: nextValue });
        touched();
        renderList();
        if (rerender || fieldChanged) renderProps(document.activeElement?.id);
      };
      sourceField.input.addEventListener('change', () => update(true));
      op.input.addEventListener('change', () => update(false));
      valueInput.addEventListener(valueInput.tagName === 'SELECT' ? 'change' : 'input', () => update(false));
      box.append(h('p', { class: 'help' }, t('forms.rule_sentence')), h('div', { class: 'fb-rule-row' }, sourceField.wrap, op.wrap, value.wrap));
    }
    const requiredShown = h('input', { type: 'checkbox', id: 'prop-required-when-visible', checked: ui.required_when_visible === true, disabled: !editable() });
    requiredShown.addEventListener('change', () => {
      if (requiredShown.checked) ui.required_when_visible = true; else delete ui.required_when_visible;
      touched();
      renderList();
    });
    box.append(h('div', { class: 'field inline' }, requiredShown, h('label', { for: requiredShown.id }, t('forms.required_when_visible'))));
    return box;
  }

  function renderProps(focusId) {
    const item = state.selected === null ? null : state.model.items[state.selected];
    const content = !item ? formSettings() : item.kind === 'section' ? sectionProps(item) : fieldProps(item);
    if (item?.kind === 'field') {
      const users = dependents(def(), item.name).filter((n) => n !== item.name);
      if (users.length) content.push(h('p', { class: 'help' }, t('forms.used_by', { fields: users.join(', ') })));
    }
    show(props, content, item ? button(t('forms.back_to_form'), () => { state.selected = null; renderList(); renderProps(); }, { kind: 'link', id: 'prop-deselect' }) : null);
    if (focusId) props.querySelector(`#${CSS.escape(focusId)}`)?.focus();
  }

  function designTab() {
    renderList();
    renderProps();
    return h('div', { class: 'fb-design' },
      editable() ? palette() : null,
      h('section', { class: 'card fb-fields', 'aria-labelledby': 'fb-fields-title', tabindex: '-1' },
        h('h2', { id: 'fb-fields-title' }, t('forms.fields')),
        editable() ? h('p', { class: 'help', id: 'fb-reorder-help' }, t('forms.reorder_help')) : null,
        list),
      props);
  }

  // ---- the preview tab -----------------------------------------------------------------------

  function previewTab() {
    const definition = toDefinition(state.model);
    const holder = h('div', { class: 'fb-preview', id: 'fb-preview' });
    const result = h('div', { id: 'fb-preview-result', 'aria-live': 'polite' });
    const preview = renderPreview(holder, definition, view.units, () => { result.replaceChildren(); });
    const check = async () => {
      clearErrors(holder);
      result.replaceChildren();
      try {
        // The definition as edited, saved or not: the server checks it and stores nothing.
        const body = { data: preview.data() };
        if (editable()) body.definition = toDefinition(state.model);
        const answer = await api.post(unitPath(view.unit, 'forms', key, 'validate'), body);
        const against = answer.version === null ? '_edited' : '';
        if (answer.valid) {
          show(result, notice(t(`forms.preview_valid${against}`, { n: answer.version })));
        } else {
          showProblem(holder, { status: 422, problem: { title: t(`forms.preview_invalid${against}`, { n: answer.version }) }, errors: answer.errors, message: '' }, result);
        }
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        show(result, problemBanner(err));
      }
    };
    return h('section', { class: 'card', 'aria-labelledby': 'fb-preview-title' },
      h('h2', { id: 'fb-preview-title' }, text(definition.title)),
      definition.description ? h('p', {}, text(definition.description)) : null,
      h('p', { class: 'help' }, editable() ? t('forms.preview_help') : t('forms.preview_help_readonly')),
      result, holder,
      h('div', { class: 'row' }, button(t('forms.preview_check'), check, { kind: 'primary', id: 'fb-preview-check' })));
  }

  // ---- the JSON tab ----------------------------------------------------------------------------

  const jsonErrors = h('ul', { class: 'fb-json-errors', id: 'fb-json-errors', 'aria-live': 'polite' });
  let textarea = null;

  function renderJsonErrors(errors) {
    jsonErrors.replaceChildren(...errors.map((e) => h('li', { dataset: { pointer: e.pointer ?? '' } },
      e.pointer !== undefined && e.pointer !== null ? h('code', { class: 'pointer' }, e.pointer || '/') : null, ' ',
      document.documentElement.lang === 'vi' && e.detail_vi ? e.detail_vi : e.detail,
      document.documentElement.lang === 'vi' && e.detail_vi && e.detail && e.detail_vi !== e.detail
        ? [' ', h('span', { class: 'muted', lang: 'en' }, `(${e.detail})`)] : null,
      e.pointer && textarea ? [' ', button(t('forms.json_show'), () => showInJson(e.pointer, true), { kind: 'link' })] : null)));
    if (textarea) {
      if (errors.length) textarea.setAttribute('aria-invalid', 'true');
      else textarea.removeAttribute('aria-invalid');
      if (errors[0]?.pointer) showInJson(errors[0].pointer, false);
    }
  }

  /** Scroll the JSON text to where a pointer's value is (and select it when asked). */
  function showInJson(pointer, select) {
    const at = locate(textarea.value, pointer);
    const end = textarea.value.indexOf('\n', at);
    if (select) {
      textarea.focus();
      textarea.setSelectionRange(at, end < 0 ? textarea.value.length : end);
    }
    const line = textarea.value.slice(0, at).split('\n').length;
    const height = parseFloat(getComputedStyle(textarea).lineHeight) || 20;
    textarea.scrollTop = Math.max(0, (line - 4) * height);
  }

  function showJsonSyntaxError(error) {
    renderJsonErrors([{ pointer: null, detail: error.line ? t('forms.json_syntax_at', { line: error.line, column: error.column, message: error.message }) : error.message }]);
    jsonErrors.querySelector('li')?.setAttribute('role', 'alert');
  }

  /** Load the JSON tab's text into the visual editor; false when it is not valid JSON. */
  function applyJson() {
    if (state.jsonText === null) return true;
    const parsed = parseJson(state.jsonText);
    if (parsed.error) { showJsonSyntaxError(parsed.error); return false; }
    const value = parsed.value;
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      renderJsonErrors([{ pointer: '', detail: t('forms.json_not_object') }]);
      return false;
    }
    state.model = fromDefinition(value);
    state.selected = null;
    state.jsonText = null;
    renderJsonErrors([]);
    return true;
  }

  function jsonTab() {
    const textValue = state.jsonText ?? JSON.stringify(toDefinition(state.model), null, 2);
    const built = field(t('forms.json_label'), h('textarea', {
      class: 'code fb-json', id: 'fb-json', rows: 28, spellcheck: 'false', readonly: !editable() ? true : null,
    }), { help: t('forms.json_help') });
    textarea = built.input;
    textarea.value = textValue;
    textarea.setAttribute('aria-describedby', `${textarea.getAttribute('aria-describedby')} fb-json-errors`);
    textarea.addEventListener('input', () => { state.jsonText = textarea.value; touched(); });
    return h('section', { class: 'card', 'aria-labelledby': 'fb-json-title' },
      h('h2', { id: 'fb-json-title' }, t('forms.json_title')),
      built.wrap, jsonErrors,
      editable() ? h('div', { class: 'row' }, button(t('forms.json_apply'), () => {
        if (applyJson()) show(messages, notice(t('forms.json_applied')));
      }, { id: 'fb-json-apply' })) : null);
  }

  // ---- tabs --------------------------------------------------------------------------------------

  async function renderTab() {
    show(tabBar, tabs(TABS.map((k) => [k, t(`forms.tab_${k}`)]), state.tab, async (next) => {
      if (next === state.tab) return;
      if (state.tab === 'json' && !applyJson()) {
        document.getElementById('tab-json')?.focus();
        return;
      }
      state.tab = next;
      await renderTab();
      document.getElementById(`tab-${next}`)?.focus();
    }));
    for (const k of TABS) document.getElementById(`tab-${k}`)?.setAttribute('aria-controls', 'fb-panel');
    panel.setAttribute('aria-labelledby', `tab-${state.tab}`);
    if (state.tab === 'design') show(panel, designTab());
    else if (state.tab === 'preview') show(panel, previewTab());
    else if (state.tab === 'json') { renderJsonErrors([]); show(panel, jsonTab()); }
    else {
      show(panel, h('p', { class: 'loading' }, t('common.loading')));
      await renderVersions(panel, view, key);
    }
  }

  const actions = [];
  if (editable()) {
    actions.push(button(t('forms.save_draft'), () => save(), { id: 'fb-save' }));
    actions.push(button(t('forms.publish'), () => publish(), { kind: 'primary', id: 'fb-publish' }));
  } else if (state.form.inherited && view.can('forms:write')) {
    actions.push(button(t('forms.create_variant'), createVariant, { kind: 'primary', id: 'fb-variant' }));
  }
  head = heading(title(), ...actions);
  append(view.main, [
    h('p', { class: 'crumbs' }, h('a', { href: `#/${encodeURIComponent(view.unit)}/forms` }, t('forms.back_to_list'))),
    head,
    status,
    state.form.inherited ? h('p', { class: 'notice warn' }, t('forms.inherited_notice', { unit: state.form.tenant || '—' })) : null,
    state.form.needs_review ? h('p', { class: 'notice warn' }, t('forms.needs_review', { reason: state.form.review_reason || '' })) : null,
    messages, tabBar, panel, announcer]);
  renderStatus();
  await renderTab();
}
