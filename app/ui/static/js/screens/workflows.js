// The workflow designer: the unit's workflows (own and inherited), creating one bound to a
// form, and editing a definition as lists of states and actions with a live diagram drawn by
// the service, publish-time errors shown on the state or action at fault, a simulator, and
// the versions. Routes: #/<unit>/workflows and #/<unit>/workflows/<key>.

import { api, ApiError, listAll, request, unitPath } from '../api.js';
import { h, show } from '../dom.js';
import { language, t, text } from '../i18n.js';
import { button, clearErrors, field, heading, input, notice, problemBanner, problemTitle, select, showProblem, table, when } from '../ui.js';

const TYPES = ['start', 'task', 'approval', 'terminal'];
const OUTCOMES = ['approved', 'rejected', 'withdrawn', 'completed'];
const COMMENTS = ['optional', 'required', 'none'];
const MODES = ['all', 'any', 'quorum'];
const PSEUDO_ROLES = ['applicant', 'system'];
const BUILTIN_ROLES = ['officer', 'reviewer', 'tenant_admin', 'form_designer', 'workflow_designer', 'auditor', 'api_client'];
const DIAGRAM_DELAY = 350;

export async function render(view) {
  if (view.rest.length) return designer(view, view.rest[0]);
  return list(view);
}

// ---- the list and creating a workflow -------------------------------------------------------

async function list(view) {
  const items = await listAll(unitPath(view.unit, 'workflows'));
  const link = (w) => h('a', { href: `#/${encodeURIComponent(view.unit)}/workflows/${encodeURIComponent(w.key)}` }, w.key);
  view.main.append(
    heading(t('workflows.title')),
    h('section', { class: 'card', 'aria-labelledby': 'wf-list-title' },
      h('h2', { id: 'wf-list-title' }, t('workflows.list_title')),
      table([
        { label: t('common.code'), cell: link },
        { label: t('workflows.source'), cell: (w) => (w.inherited ? t('workflows.inherited_from', { unit: w.tenant || '—' }) : t('workflows.own')) },
        { label: t('common.status'), cell: (w) => t(`workflows.status_${w.status}`) },
        { label: t('workflows.latest_version'), cell: (w) => w.latest_version ?? '—' },
        { label: t('workflows.draft_version'), cell: (w) => w.draft_version ?? '—' },
        { label: t('common.updated_at'), cell: (w) => when(w.updated_at) },
      ], items, { empty: t('workflows.none') })),
    view.can('workflows:write') ? await createForm(view) : null);
}

function skeleton(key, title, form) {
  return {
    kind: 'Workflow', key, title, form,
    states: [
      { name: 'tiep_nhan', type: 'start', title: { vi: 'Hồ sơ đã nộp', en: 'File submitted' } },
      { name: 'hoan_thanh', type: 'terminal', title: { vi: 'Hoàn thành', en: 'Completed' }, outcome: 'completed' },
    ],
    actions: [
      { name: 'hoan_tat', title: { vi: 'Hoàn tất', en: 'Complete' }, from: 'tiep_nhan', to: 'hoan_thanh', roles: ['officer'] },
    ],
  };
}

async function createForm(view) {
  const forms = await listAll(unitPath(view.unit, 'forms')).catch(() => []);
  const key = field(t('workflows.key'), input({ name: 'key', autocomplete: 'off', id: 'wf-new-key' }),
    { pointer: '/key', required: true, help: t('workflows.key_help') });
  const titleVi = field(t('workflows.title_vi'), input({ name: 'title_vi', id: 'wf-new-title-vi' }), { pointer: '/title/vi', required: true });
  const titleEn = field(t('workflows.title_en'), input({ name: 'title_en', id: 'wf-new-title-en' }), { pointer: '/title/en', required: true });
  const form = field(t('workflows.form'), select([['', t('workflows.pick_form')],
    ...forms.map((f) => [f.key, `${f.key} (${t(`workflows.status_${f.status}`)})`])], { name: 'form', id: 'wf-new-form' }),
  { pointer: '/form', required: true, help: t('workflows.form_help') });
  const element = h('form', {
    class: 'card', 'aria-labelledby': 'wf-create-title', novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      clearErrors(element);
      const code = key.input.value.trim();
      try {
        await api.post(unitPath(view.unit, 'workflows'), skeleton(code,
          { vi: titleVi.input.value.trim(), en: titleEn.input.value.trim() }, form.input.value));
        view.go(view.unit, 'workflows', code);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        showProblem(element, err);
      }
    },
  },
  h('h2', { id: 'wf-create-title' }, t('workflows.create_title')),
  h('p', { class: 'help' }, t('workflows.create_help')),
  key.wrap, titleVi.wrap, titleEn.wrap, form.wrap,
  button(t('workflows.create'), null, { kind: 'primary', type: 'submit', id: 'wf-create' }));
  return element;
}

// ---- the designer ---------------------------------------------------------------------------

async function loadRoles(view) {
  try {
    const roles = await api.get(unitPath(view.unit, 'roles'));
    return roles.filter((r) => r.key !== 'platform_admin').map((r) => ({ key: r.key, name: r.name }));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return BUILTIN_ROLES.map((key) => ({ key, name: key }));
  }
}

const asList = (value) => (Array.isArray(value) ? value : typeof value === 'string' ? [value] : []);

/** Set obj[key], or drop it when the value is empty. */
function put(obj, key, value) {
  if (value === '' || value === undefined || value === null) delete obj[key];
  else obj[key] = value;
}

function errorMessage(error) {
  return language() === 'vi' && error.detail_vi ? error.detail_vi : error.detail;
}

async function designer(view, key) {
  const path = unitPath(view.unit, 'workflows', key);
  const workflow = await api.get(path);
  const [roles, forms] = await Promise.all([
    loadRoles(view), listAll(unitPath(view.unit, 'forms')).catch(() => [])]);
  const ed = { own: !workflow.inherited, number: workflow.inherited ? null : workflow.draft_version, dirty: false };
  view.guard(() => ed.dirty);
  ed.doc = ed.number ? (await api.get(`${path}/versions/${ed.number}`)).definition : structuredClone(workflow.definition);
  const doc = ed.doc;
  doc.states = Array.isArray(doc.states) ? doc.states : [];
  doc.actions = Array.isArray(doc.actions) ? doc.actions : [];
  const writable = view.can('workflows:write');

  const status = h('div', { id: 'wf-status', 'aria-live': 'polite' });
  const editing = h('p', { id: 'wf-editing', class: 'muted' });
  const statesList = h('ol', { class: 'wf-list', id: 'wf-states' });
  const actionsList = h('ol', { class: 'wf-list', id: 'wf-actions' });
  const names = h('datalist', { id: 'wf-state-names' });
  const diagramBox = h('div', { class: 'wf-diagram', id: 'wf-diagram', tabindex: '0', role: 'group', 'aria-labelledby': 'wf-diagram-title' }, h('p', { class: 'loading' }, t('common.loading')));
  const versionsBox = h('div', { id: 'wf-versions' });

  function describeEditing() {
    const what = !ed.own ? t('workflows.editing_inherited', { unit: workflow.tenant || '—' })
      : ed.number ? t('workflows.editing_draft', { number: ed.number })
        : t('workflows.editing_current', { number: workflow.latest_version ?? '—' });
    editing.textContent = ed.dirty ? `${what} ${t('workflows.unsaved')}` : what;
  }

  // ---- the diagram, redrawn by the service a moment after each change ----
  let timer = null;
  let drawn = 0;
  let simulator = null;
  async function drawDiagram() {
    const ticket = ++drawn;
    try {
      const response = await request('POST', unitPath(view.unit, 'workflows', 'diagram'), {
        body: doc, raw: true, headers: { Accept: 'image/svg+xml, application/problem+json' } });
      const svg = await response.text();
      if (ticket !== drawn) return;
      const parsed = new DOMParser().parseFromString(svg, 'image/svg+xml');
      const root = parsed.documentElement;
      if (root.localName !== 'svg' || parsed.getElementsByTagName('parsererror').length) {
        show(diagramBox, h('p', { class: 'problem', role: 'alert' }, t('workflows.diagram_failed')));
        return;
      }
      for (const bad of root.querySelectorAll('script, foreignObject')) bad.remove();
      show(diagramBox, document.importNode(root, true));
      diagramBox.dataset.drawn = String(ticket);
      simulator?.refresh();
    } catch (err) {
      if (ticket !== drawn) return;
      if (!(err instanceof ApiError)) throw err;
      show(diagramBox, problemBanner(err));
    }
  }
  function changed() {
    ed.dirty = true;
    describeEditing();
    clearTimeout(timer);
    timer = setTimeout(drawDiagram, DIAGRAM_DELAY);
  }

  // ---- list items ----
  function stateNames() {
    return doc.states.map((s) => s.name).filter((n) => typeof n === 'string' && n);
  }

  function itemHead(kind, index, count, label, onMove, onRemove) {
    const base = `wf-${kind}-${index}`;
    return h('div', { class: 'wf-item-head' },
      h('h3', { id: `${base}-title` }, label),
      h('div', { class: 'wf-item-tools' },
        button('↑', () => onMove(-1), { id: `${base}-up`, disabled: index === 0 || !writable, 'aria-label': t('workflows.move_up', { name: label }) }),
        button('↓', () => onMove(1), { id: `${base}-down`, disabled: index === count - 1 || !writable, 'aria-label': t('workflows.move_down', { name: label }) }),
        button(t('common.delete'), onRemove, { kind: 'danger', id: `${base}-remove`, disabled: !writable, 'aria-label': t('workflows.remove_named', { name: label }) })));
  }

  function stateLabel(state, i) {
    return `${t('workflows.state')} ${i + 1}: ${state.name || '—'}`;
  }

  function actionLabel(action, i) {
    return `${t('workflows.action')} ${i + 1}: ${action.name || '—'}`;
  }

  /** The heading of a list item and its buttons' names follow the item's name. */
  function relabel(kind, index, label) {
    const base = `wf-${kind}-${index}`;
    document.getElementById(`${base}-title`).textContent = label;
    document.getElementById(`${base}-up`).setAttribute('aria-label', t('workflows.move_up', { name: label }));
    document.getElementById(`${base}-down`).setAttribute('aria-label', t('workflows.move_down', { name: label }));
    document.getElementById(`${base}-remove`).setAttribute('aria-label', t('workflows.remove_named', { name: label }));
  }

  function refocus(id) {
    document.getElementById(id)?.focus();
  }

  function renderStates(focusId) {
    show(statesList, doc.states.map((state, i) => stateItem(state, i)));
    show(names, stateNames().map((n) => h('option', { value: n })));
    if (focusId) refocus(focusId);
  }

  function renderActions(focusId) {
    show(actionsList, doc.actions.map((action, i) => actionItem(action, i)));
    if (focusId) refocus(focusId);
  }

  function move(items, i, by, redraw, kind) {
    const j = i + by;
    if (j < 0 || j >= items.length) return;
    [items[i], items[j]] = [items[j], items[i]];
    changed();
    const edge = (by < 0 && j === 0) || (by > 0 && j === items.length - 1);
    redraw(`wf-${kind}-${j}-${edge ? (by < 0 ? 'down' : 'up') : (by < 0 ? 'up' : 'down')}`);
  }

  function remove(items, i, redraw, kind) {
    items.splice(i, 1);
    changed();
    redraw(items.length ? `wf-${kind}-${Math.min(i, items.length - 1)}-name` : `wf-add-${kind}`);
  }

  function stateItem(state, i) {
    const id = (name) => `wf-state-${i}-${name}`;
    const p = (name) => `/states/${i}/${name}`;
    const name = field(t('workflows.state_name'), input({ id: id('name'), value: state.name || '', autocomplete: 'off', dataset: { role: 'name' },
      oninput: (e) => { state.name = e.target.value.trim(); relabel('state', i, stateLabel(state, i)); changed(); },
      onchange: (e) => renameState(e.target) }), { pointer: p('name'), required: true, help: t('workflows.name_help') });
    name.input.dataset.was = state.name || '';
    const type = field(t('workflows.state_type'), select(TYPES.map((k) => [k, t(`workflows.type_${k}`)]), { id: id('type'), value: state.type,
      onchange: (e) => { setType(state, e.target.value); changed(); renderStates(id('type')); renderActions(); } }), { pointer: p('type') });
    const titleVi = field(t('workflows.title_vi'), input({ id: id('title-vi'), value: state.title?.vi || '',
      oninput: (e) => { state.title = { ...state.title, vi: e.target.value }; changed(); } }), { pointer: p('title/vi'), required: true });
    const titleEn = field(t('workflows.title_en'), input({ id: id('title-en'), value: state.title?.en || '',
      oninput: (e) => { state.title = { ...state.title, en: e.target.value }; changed(); } }), { pointer: p('title/en'), required: true });
    const parts = [h('div', { class: 'wf-grid' }, name.wrap, type.wrap, titleVi.wrap, titleEn.wrap)];
    if (state.type === 'terminal') {
      parts.push(h('div', { class: 'wf-grid' }, field(t('workflows.outcome'), select(OUTCOMES.map((k) => [k, t(`workflows.outcome_${k}`)]),
        { id: id('outcome'), value: state.outcome || 'completed', onchange: (e) => { state.outcome = e.target.value; changed(); } }), { pointer: p('outcome') }).wrap));
    } else {
      parts.push(slaFields(state, id, p));
    }
    if (state.type === 'approval') parts.push(approvalFields(state, id, p));
    const item = h('li', { class: `wf-item wf-state type-${state.type}`, id: `wf-state-${i}`, dataset: { pointer: `/states/${i}` } },
      itemHead('state', i, doc.states.length, stateLabel(state, i),
        (by) => move(doc.states, i, by, renderStates, 'state'),
        () => { remove(doc.states, i, renderStates, 'state'); renderActions(); }),
      ...parts);
    return item;
  }

  function slaFields(owner, id, p) {
    const update = (patch) => {
      const sla = { ...(owner.sla || {}), ...patch };
      for (const [k, v] of Object.entries(sla)) if (v === '') delete sla[k];
      if (Object.keys(sla).length) owner.sla = sla; else delete owner.sla;
      changed();
    };
    const duration = field(t('workflows.sla_duration'), input({ id: id('sla-duration'), value: owner.sla?.duration || '', autocomplete: 'off',
      oninput: (e) => update({ duration: e.target.value.trim().toUpperCase() }) }), { pointer: p('sla/duration'), help: t('workflows.sla_help') });
    const days = field(t('workflows.sla_days'), select([['working', t('workflows.days_working')], ['calendar', t('workflows.days_calendar')]],
      { id: id('sla-days'), value: owner.sla?.days || 'working', onchange: (e) => update({ days: e.target.value }) }), { pointer: p('sla/days') });
    return h('div', { class: 'wf-grid' }, duration.wrap, days.wrap);
  }

  function approvalFields(state, id, p) {
    const approval = state.approval;
    const mode = field(t('workflows.approval_mode'), select(MODES.map((k) => [k, t(`workflows.mode_${k}`)]), { id: id('mode'), value: approval.mode,
      onchange: (e) => { approval.mode = e.target.value; if (approval.mode !== 'quorum') delete approval.quorum; changed(); renderStates(id('mode')); } }),
    { pointer: p('approval/mode') });
    const seats = field(t('workflows.approval_seats'), input({ id: id('seats'), value: asList(approval.seats).join(', '),
      oninput: (e) => { approval.seats = e.target.value.split(',').map((s) => s.trim()).filter(Boolean); changed(); } }),
    { pointer: p('approval/seats'), help: t('workflows.approval_seats_help') });
    const parts = [mode.wrap, seats.wrap];
    if (approval.mode === 'quorum') {
      parts.push(field(t('workflows.approval_quorum'), input({ id: id('quorum'), type: 'number', min: '1', value: approval.quorum ?? '',
        oninput: (e) => { put(approval, 'quorum', e.target.value ? Number(e.target.value) : ''); changed(); } }), { pointer: p('approval/quorum') }).wrap);
    }
    return h('div', { class: 'wf-grid' }, parts);
  }

  function setType(state, type) {
    state.type = type;
    if (type === 'terminal') {
      delete state.sla; delete state.assignment; delete state.approval; delete state.waits_on_applicant;
      state.outcome ||= 'completed';
    } else {
      delete state.outcome;
    }
    if (type === 'approval') state.approval ||= { mode: 'all', seats: ['reviewer'] };
    else delete state.approval;
  }

  // A renamed state keeps its actions: their from and to follow, updated in place (the
  // lists are not rebuilt, so whatever took the focus keeps it).
  function renameState(nameInput) {
    const before = nameInput.dataset.was;
    const after = nameInput.value.trim();
    nameInput.dataset.was = after;
    show(names, stateNames().map((n) => h('option', { value: n })));
    if (!before || !after || before === after) return;
    doc.actions.forEach((action, i) => {
      if (Array.isArray(action.from)) action.from = action.from.map((s) => (s === before ? after : s));
      else if (action.from === before) action.from = after;
      if (action.to === before) {
        action.to = after;
        const to = document.getElementById(`wf-action-${i}-to`);
        if (to) to.value = after;
      }
    });
    for (const box of actionsList.querySelectorAll('input[type="checkbox"][data-state]')) {
      if (box.value !== before) continue;
      box.value = after;
      box.dataset.state = after;
      box.parentElement.querySelector('.wf-check-text').textContent = after;
    }
    changed();
  }

  function checkboxes(legend, pointer, baseId, options, chosen, onToggle, help, kind) {
    const errorId = `${baseId}-error`;
    const helpEl = help ? h('p', { class: 'help', id: `${baseId}-help` }, help) : null;
    return h('fieldset', { id: baseId, class: 'wf-checks', dataset: { pointer }, 'aria-describedby': [helpEl ? helpEl.id : null, errorId].filter(Boolean).join(' ') },
      h('legend', {}, legend), helpEl,
      h('div', { class: 'checklist' }, options.map(([value, label], k) => {
        const box = h('input', { type: 'checkbox', id: `${baseId}-${k}`, value, checked: chosen.includes(value),
          dataset: kind ? { [kind]: value } : undefined, onchange: (e) => onToggle(e.target.value, e.target.checked, e.target.id) });
        return h('label', { for: box.id }, box, ' ', h('span', { class: 'wf-check-text' }, label));
      })),
      h('p', { class: 'field-error', id: errorId, hidden: true }));
  }

  function actionItem(action, i) {
    const id = (name) => `wf-action-${i}-${name}`;
    const p = (name) => `/actions/${i}/${name}`;
    const name = field(t('workflows.action_name'), input({ id: id('name'), value: action.name || '', autocomplete: 'off', dataset: { role: 'name' },
      oninput: (e) => { action.name = e.target.value.trim(); relabel('action', i, actionLabel(action, i)); changed(); } }),
    { pointer: p('name'), required: true, help: t('workflows.name_help') });
    const titleVi = field(t('workflows.title_vi'), input({ id: id('title-vi'), value: action.title?.vi || '',
      oninput: (e) => { action.title = { ...action.title, vi: e.target.value }; changed(); } }), { pointer: p('title/vi'), required: true });
    const titleEn = field(t('workflows.title_en'), input({ id: id('title-en'), value: action.title?.en || '',
      oninput: (e) => { action.title = { ...action.title, en: e.target.value }; changed(); } }), { pointer: p('title/en'), required: true });
    const sources = asList(action.from);
    const fromOptions = [...new Set([...stateNames(), ...sources])].map((n) => [n, stateNames().includes(n) ? n : `${n} (${t('workflows.missing')})`]);
    const from = checkboxes(t('workflows.action_from'), p('from'), id('from'), fromOptions, sources, (value, on, focusId) => {
      const now = asList(action.from).filter((s) => s !== value);
      if (on) now.push(value);
      action.from = now.length === 1 ? now[0] : now;
      changed();
      if (!on && !stateNames().includes(value)) renderActions(focusId);
    }, null, 'state');
    const to = field(t('workflows.action_to'), input({ id: id('to'), value: action.to || '', list: 'wf-state-names', autocomplete: 'off',
      oninput: (e) => { put(action, 'to', e.target.value.trim()); changed(); } }), { pointer: p('to'), required: true, help: t('workflows.action_to_help') });
    const held = asList(action.roles);
    const roleOptions = [...roles.map((r) => [r.key, r.name && r.name !== r.key ? `${r.name} (${r.key})` : r.key]),
      ...PSEUDO_ROLES.map((r) => [r, t(`workflows.role_${r}`)]),
      ...held.filter((r) => !roles.some((x) => x.key === r) && !PSEUDO_ROLES.includes(r)).map((r) => [r, r])];
    const roleBoxes = checkboxes(t('workflows.action_roles'), p('roles'), id('roles'), roleOptions, held, (value, on, focusId) => {
      const now = asList(action.roles).filter((r) => r !== value);
      if (on) now.push(value);
      action.roles = now;
      if (action.signature?.role && !now.includes(action.signature.role)) delete action.signature.role;
      changed();
      renderActions(focusId);
    }, t('workflows.action_roles_help'));
    const comment = field(t('workflows.comment'), select(COMMENTS.map((k) => [k, t(`workflows.comment_${k}`)]), { id: id('comment'), value: action.comment || 'optional',
      onchange: (e) => { put(action, 'comment', e.target.value === 'optional' ? '' : e.target.value); changed(); } }), { pointer: p('comment') });
    const signed = action.signature?.required === true;
    const signBox = h('input', { type: 'checkbox', id: id('signature'), checked: signed, dataset: { pointer: p('signature/required') },
      'aria-describedby': `${id('signature')}-error`,
      onchange: (e) => {
        if (e.target.checked) action.signature = { ...(action.signature || {}), required: true, role: action.signature?.role || held.find((r) => !PSEUDO_ROLES.includes(r)) };
        else delete action.signature;
        if (action.signature && !action.signature.role) delete action.signature.role;
        changed();
        renderActions(id('signature'));
      } });
    const signature = h('div', { class: 'wf-signature' },
      h('div', { class: 'field inline' }, signBox, h('label', { for: signBox.id }, t('workflows.signature_required'))),
      h('p', { class: 'field-error', id: `${id('signature')}-error`, hidden: true }),
      signed ? field(t('workflows.signer_role'), select([['', t('workflows.pick_signer')], ...held.filter((r) => r !== 'system').map((r) => [r, r])],
        { id: id('signer'), value: action.signature.role || '', onchange: (e) => { put(action.signature, 'role', e.target.value); changed(); } }),
      { pointer: p('signature'), help: t('workflows.signer_help') }).wrap : null);
    const extra = [];
    if (doc.states.some((s) => s.type === 'approval')) {
      extra.push(field(t('workflows.vote'), select([['', t('workflows.vote_none')], ['approve', t('workflows.vote_approve')], ['reject', t('workflows.vote_reject')]],
        { id: id('vote'), value: action.vote || '', onchange: (e) => { put(action, 'vote', e.target.value); changed(); } }), { pointer: p('vote') }).wrap);
    }
    return h('li', { class: 'wf-item wf-action', id: `wf-action-${i}`, dataset: { pointer: `/actions/${i}` } },
      itemHead('action', i, doc.actions.length, actionLabel(action, i),
        (by) => move(doc.actions, i, by, renderActions, 'action'),
        () => remove(doc.actions, i, renderActions, 'action')),
      h('div', { class: 'wf-grid' }, name.wrap, titleVi.wrap, titleEn.wrap, to.wrap),
      from, roleBoxes,
      h('div', { class: 'wf-grid' }, comment.wrap, ...extra),
      signature);
  }

  function addState() {
    const n = doc.states.length + 1;
    doc.states.push({ name: `buoc_${n}`, type: 'task', title: { vi: `Bước ${n}`, en: `Step ${n}` } });
    changed();
    renderStates(`wf-state-${doc.states.length - 1}-name`);
    renderActions();
  }

  function addAction() {
    const n = doc.actions.length + 1;
    const first = stateNames()[0] || '';
    doc.actions.push({ name: `thao_tac_${n}`, title: { vi: `Thao tác ${n}`, en: `Action ${n}` }, from: first, to: '', roles: ['officer'] });
    changed();
    renderActions(`wf-action-${doc.actions.length - 1}-name`);
  }

  // ---- errors from the service, on the state or action at fault ----
  function locate(pointer) {
    let candidate = pointer;
    while (candidate) {
      const found = editor.querySelector(`[data-pointer="${CSS.escape(candidate)}"]`);
      if (found) return found;
      candidate = candidate.slice(0, Math.max(0, candidate.lastIndexOf('/')));
    }
    return null;
  }

  function clearAll() {
    clearErrors(editor);
    for (const item of editor.querySelectorAll('.wf-item.invalid')) item.classList.remove('invalid');
    status.replaceChildren();
  }

  function placeErrors(err) {
    clearAll();
    const summary = [];
    for (const error of err.errors || []) {
      const pointer = error.pointer ?? '';
      let target = locate(pointer);
      if (target?.classList.contains('wf-item')) target = target.querySelector('[data-role="name"]');
      const message = errorMessage(error);
      if (target) {
        target.setAttribute('aria-invalid', 'true');
        target.closest('.wf-item')?.classList.add('invalid');
        const box = document.getElementById(`${target.id}-error`);
        if (box) {
          box.hidden = false;
          box.textContent = box.textContent ? `${box.textContent} ${message}` : message;
        }
      }
      const where = target?.closest('.wf-item')?.querySelector('h3')?.textContent;
      summary.push(h('li', {}, target
        ? button(where || pointer, () => target.focus(), { kind: 'link' }) : h('code', {}, pointer || '/'), ' ', message));
    }
    show(status, h('div', { class: 'problem', role: 'alert', id: 'wf-problem' },
      h('strong', {}, problemTitle(err)),
      err.problem?.detail ? h('p', {}, err.problem.detail) : null,
      summary.length ? h('ul', {}, summary) : null));
    (editor.querySelector('[aria-invalid="true"]') || status.firstChild)?.focus?.();
  }

  // ---- saving and publishing ----
  async function save() {
    clearAll();
    try {
      if (!ed.own) {
        const created = await api.post(unitPath(view.unit, 'workflows'), doc);
        ed.own = true;
        ed.number = created.draft_version;
      } else if (ed.number) {
        await api.put(`${path}/versions/${ed.number}`, doc);
      } else {
        ed.number = (await api.post(`${path}/versions`, doc)).number;
      }
      ed.dirty = false;
      describeEditing();
      show(status, notice(t('workflows.saved', { number: ed.number })));
      await loadVersions();
      return true;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      placeErrors(err);
      return false;
    }
  }

  async function publish() {
    if (!(await save())) return;
    try {
      const published = await api.post(`${path}/versions/${ed.number}/publish`);
      workflow.latest_version = published.number;
      ed.number = null;
      describeEditing();
      show(status, notice(t('workflows.published', { number: published.number })));
      await loadVersions();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      placeErrors(err);
    }
  }

  async function loadVersions() {
    try {
      const versions = await api.get(`${path}/versions`);
      show(versionsBox, table([
        { label: t('workflows.version'), cell: (v) => v.number },
        { label: t('common.status'), cell: (v) => h('span', { class: `badge wf-status-${v.status}` }, t(`workflows.status_${v.status}`)) },
        { label: t('common.created_at'), cell: (v) => when(v.created_at) },
        { label: t('workflows.published_at'), cell: (v) => when(v.published_at) },
        { label: t('workflows.digest'), cell: (v) => h('code', {}, (v.digest || '').slice(0, 12)) },
      ], versions, { caption: t('workflows.versions'), empty: t('workflows.no_versions') }));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(versionsBox, problemBanner(err));
    }
  }

  // ---- the top of the definition ----
  const formOptions = [...new Set([...forms.map((f) => f.key), doc.form].filter(Boolean))];
  const meta = h('fieldset', { class: 'wf-meta' }, h('legend', {}, t('workflows.general')),
    h('div', { class: 'wf-grid' },
      field(t('workflows.title_vi'), input({ id: 'wf-title-vi', value: doc.title?.vi || '',
        oninput: (e) => { doc.title = { ...doc.title, vi: e.target.value }; changed(); } }), { pointer: '/title/vi', required: true }).wrap,
      field(t('workflows.title_en'), input({ id: 'wf-title-en', value: doc.title?.en || '',
        oninput: (e) => { doc.title = { ...doc.title, en: e.target.value }; changed(); } }), { pointer: '/title/en', required: true }).wrap,
      field(t('workflows.form'), select([['', t('workflows.pick_form')], ...formOptions.map((k) => [k, k])], { id: 'wf-form', value: doc.form || '',
        onchange: (e) => { put(doc, 'form', e.target.value); changed(); } }), { pointer: '/form', required: true, help: t('workflows.form_help') }).wrap),
    h('p', { class: 'help' }, t('workflows.case_sla')),
    slaFields(doc, (name) => `wf-case-${name}`, (name) => `/${name}`));

  const editor = h('form', { id: 'wf-editor', novalidate: true, 'aria-labelledby': 'wf-editor-title', onsubmit: (e) => { e.preventDefault(); save(); } },
    h('h2', { id: 'wf-editor-title', class: 'visually-hidden' }, t('workflows.editor')),
    h('fieldset', { class: 'wf-body', disabled: !writable },
      meta,
      h('section', { 'aria-labelledby': 'wf-states-title' },
        h('h2', { id: 'wf-states-title' }, t('workflows.states')),
        h('p', { class: 'help' }, t('workflows.states_help')),
        statesList,
        button(t('workflows.add_state'), addState, { id: 'wf-add-state' })),
      h('section', { 'aria-labelledby': 'wf-actions-title' },
        h('h2', { id: 'wf-actions-title' }, t('workflows.actions')),
        h('p', { class: 'help' }, t('workflows.actions_help')),
        actionsList,
        button(t('workflows.add_action'), addAction, { id: 'wf-add-action' }))),
    names);

  simulator = simulatorPanel({ view, path, doc, ed, save, placeErrors });

  view.main.append(
    heading(`${text(doc.title) || key} (${key})`,
      writable ? button(t('workflows.save_draft'), save, { id: 'wf-save' }) : null,
      writable ? button(t('workflows.publish'), publish, { kind: 'primary', id: 'wf-publish' }) : null),
    h('p', {}, h('a', { href: `#/${encodeURIComponent(view.unit)}/workflows` }, t('workflows.back_to_list'))),
    editing, status,
    h('div', { class: 'wf-layout' },
      h('div', { class: 'wf-edit card' }, editor),
      h('figure', { class: 'wf-figure card', 'aria-labelledby': 'wf-diagram-title' },
        h('figcaption', { id: 'wf-diagram-title' }, t('workflows.diagram')),
        h('p', { class: 'help' }, t('workflows.diagram_help')),
        button(t('workflows.diagram_actual_size'), (e) => {
          const full = diagramBox.classList.toggle('full');
          e.currentTarget.setAttribute('aria-pressed', String(full));
        }, { id: 'wf-diagram-zoom', 'aria-pressed': 'false' }),
        diagramBox)),
    simulator,
    h('section', { class: 'card', 'aria-labelledby': 'wf-versions-title' },
      h('h2', { id: 'wf-versions-title' }, t('workflows.versions')), versionsBox));
  describeEditing();
  renderStates();
  renderActions();
  await Promise.all([drawDiagram(), loadVersions()]);
}

// ---- the simulator --------------------------------------------------------------------------

function simulatorPanel({ view, path, doc, ed, save, placeErrors }) {
  const steps = [];
  const stepsList = h('ol', { class: 'wf-steps', id: 'wf-sim-steps' });
  const result = h('div', { id: 'wf-sim-result', 'aria-live': 'polite' });
  const data = field(t('workflows.sim_data'), h('textarea', { id: 'wf-sim-data', class: 'code', rows: 5, spellcheck: 'false' }, '{}'),
    { pointer: '/data', help: t('workflows.sim_data_help') });

  function renderSteps(focusId) {
    const active = stepsList.contains(document.activeElement) ? document.activeElement.id : null;
    show(stepsList, steps.map((step, i) => {
      const actionSelect = field(t('workflows.sim_action'), select([['', t('workflows.sim_pick_action')],
        ...doc.actions.map((a) => [a.name, `${a.name} (${asList(a.from).join(', ')} → ${a.to || '?'})`])],
      { id: `wf-sim-${i}-action`, value: step.action, onchange: (e) => {
        step.action = e.target.value;
        step.signed = doc.actions.find((a) => a.name === step.action)?.signature?.required === true;
        renderSteps(`wf-sim-${i}-action`);
      } }), { pointer: `/steps/${i}/action` });
      const comment = field(t('workflows.sim_comment'), input({ id: `wf-sim-${i}-comment`, value: step.comment,
        oninput: (e) => { step.comment = e.target.value; } }), { pointer: `/steps/${i}/comment` });
      const signed = h('input', { type: 'checkbox', id: `wf-sim-${i}-signed`, checked: step.signed, onchange: (e) => { step.signed = e.target.checked; } });
      return h('li', { class: 'wf-step row' }, actionSelect.wrap, comment.wrap,
        h('div', { class: 'field inline' }, signed, h('label', { for: signed.id }, t('workflows.sim_signed'))),
        button(t('common.delete'), () => { steps.splice(i, 1); renderSteps('wf-sim-add'); },
          { kind: 'danger', id: `wf-sim-${i}-remove`, 'aria-label': t('workflows.sim_remove_step', { n: i + 1 }) }));
    }));
    if (focusId || active) document.getElementById(focusId || active)?.focus();
  }

  function stepBody(step, i) {
    const action = doc.actions.find((a) => a.name === step.action) || {};
    const held = asList(action.roles);
    const body = { action: step.action, actor: { id: `mau-${i + 1}`, roles: held.length ? held : ['officer'], at: action.at || 'case' }, signed: step.signed };
    if (step.comment) body.comment = step.comment;
    if (action.vote) {
      const state = doc.states.find((s) => s.type === 'approval' && asList(action.from).includes(s.name));
      const seat = asList(state?.approval?.seats).find((r) => held.includes(r));
      if (seat) body.seat = seat;
    }
    return body;
  }

  function showResult(outcome) {
    const refused = outcome.refused;
    const rows = outcome.steps.map((s, i) => ({ ...s, index: i }));
    if (refused) rows.push({ index: refused.step, action: steps[refused.step]?.action, refused });
    show(result,
      h('p', { id: 'wf-sim-final' }, t('workflows.sim_final', { state: outcome.state, version: outcome.version })),
      h('p', {}, t('workflows.sim_path'), ' ', h('span', { id: 'wf-sim-path' }, outcome.path.join(' → '))),
      table([
        { label: '#', cell: (r) => r.index + 1 },
        { label: t('workflows.sim_action'), cell: (r) => r.action },
        { label: t('workflows.sim_from_to'), cell: (r) => (r.refused ? '—' : `${r.from} → ${r.to}`) },
        { label: t('workflows.sim_result'), cell: (r) => (r.refused
          ? h('span', { class: 'wf-refused' }, `${t('workflows.sim_refused')} (${r.refused.code}): ${language() === 'vi' ? r.refused.detail_vi : r.refused.detail}`,
            r.refused.errors?.length ? h('ul', {}, r.refused.errors.map((e) => h('li', {}, h('code', {}, e.pointer || ''), ' ', errorMessage(e)))) : null)
          : r.moved ? t('workflows.sim_moved') : t('workflows.sim_voted', { vote: r.vote || '' })) },
      ], rows, { caption: t('workflows.sim_steps_caption'), empty: t('workflows.sim_no_steps') }),
      outcome.problems.length ? h('div', { class: 'notice warn' },
        h('p', {}, t('workflows.sim_problems')),
        h('ul', {}, outcome.problems.map((e) => h('li', {}, h('code', {}, e.pointer || '/'), ' ', errorMessage(e))))) : null);
  }

  const panel = h('form', {
    class: 'card wf-simulator', 'aria-labelledby': 'wf-sim-title', novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      clearErrors(panel);
      result.replaceChildren();
      let sample;
      try {
        sample = JSON.parse(data.input.value || '{}');
        if (typeof sample !== 'object' || sample === null || Array.isArray(sample)) throw new SyntaxError('not an object');
      } catch {
        data.input.setAttribute('aria-invalid', 'true');
        const box = document.getElementById(`${data.input.id}-error`);
        box.hidden = false;
        box.textContent = t('workflows.sim_data_invalid');
        data.input.focus();
        return;
      }
      if (ed.dirty && view.can('workflows:write') && !(await save())) return;
      try {
        const outcome = await api.post(`${path}/simulate`, { data: sample, steps: steps.map(stepBody) });
        showResult(outcome);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if ((err.errors || []).some((e) => /^\/(states|actions)\//.test(e.pointer || ''))) placeErrors(err);
        else showProblem(panel, err, result);
      }
    },
  },
  h('h2', { id: 'wf-sim-title' }, t('workflows.simulator')),
  h('p', { class: 'help' }, t('workflows.sim_help')),
  data.wrap,
  h('h3', {}, t('workflows.sim_steps')),
  stepsList,
  h('div', { class: 'row' },
    button(t('workflows.sim_add_step'), () => { steps.push({ action: '', comment: '', signed: false }); renderSteps(`wf-sim-${steps.length - 1}-action`); }, { id: 'wf-sim-add' }),
    button(t('workflows.sim_run'), null, { kind: 'primary', type: 'submit', id: 'wf-sim-run' })),
  result);
  renderSteps();
  panel.refresh = () => renderSteps();
  return panel;
}
