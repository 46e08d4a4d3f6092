// The official's desk: "my tasks" across every unit they hold grants in (most urgent first,
// with SLA badges), and the case view: its data rendered from the pinned form version,
// attachments, history, signatures, and the actions the official may take now — with their
// fields and comment, signing where the step needs it (including a remote signature that is
// still pending), and a clear message when someone else acted first (412).

import { api, ApiError, download, getWithEtag, listAll, request, unitPath } from '../api.js';
import { h, show, uid } from '../dom.js';
import { t, text } from '../i18n.js';
import { button, clearErrors, field, heading, notice, problemBanner, showProblem, slaBadge, table, when } from '../ui.js';

const PENDING_POLL_MS = 2000;
const PROVIDERS = ['pkcs12', 'client', 'csc'];

/** A signing provider as officials know it (a province's own provider by its name). */
function providerName(name) {
  return PROVIDERS.includes(name) ? t(`inbox.provider_${name}`) : name;
}

export async function render(view) {
  if (view.section === 'cases' && view.rest[0]) {
    await caseView(view, view.rest[0]);
    return;
  }
  await inbox(view);
}

async function inbox(view) {
  const tasks = await listAll('me/tasks', {}, 500);
  view.main.append(
    heading(t('inbox.title')),
    h('p', { class: 'muted' }, t('inbox.intro', { count: tasks.length })),
    table([
      { label: t('inbox.case'), cell: (task) => h('a', { href: `#/${encodeURIComponent(task.tenant)}/cases/${task.case}` }, `${task.form} · ${task.case.slice(0, 8)}`) },
      { label: t('inbox.unit'), cell: (task) => view.units.get(task.tenant)?.name || task.tenant },
      { label: t('inbox.state'), cell: (task) => text(task.state.title) },
      { label: t('inbox.sla'), cell: (task) => slaBadge(task.sla) },
      { label: t('inbox.due'), cell: (task) => when(task.due_at) },
      { label: t('inbox.can_do'), cell: (task) => task.actions.join(', ') },
      { label: t('common.updated_at'), cell: (task) => when(task.updated_at) },
    ], tasks, { caption: t('inbox.caption'), empty: t('inbox.empty') }));
}

// ---- rendering a case's data from its pinned form ------------------------------------------

function value(v) {
  if (v === null || v === undefined || v === '') return h('span', { class: 'muted' }, '—');
  if (typeof v === 'boolean') return v ? t('common.yes') : t('common.no');
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x !== 'object' || x === null)) return v.join(', ');
    return h('ol', {}, v.map((item) => h('li', {}, value(item))));
  }
  if (typeof v === 'object') {
    return h('dl', { class: 'facts' }, Object.entries(v).flatMap(([k, x]) => [h('dt', {}, k), h('dd', {}, value(x))]));
  }
  return String(v);
}

function dataView(data, definition) {
  const ui = definition?.ui_schema || { fields: {} };
  const fields = ui.fields || {};
  const order = [...(ui.order || []), ...Object.keys(definition?.schema?.properties || {}), ...Object.keys(data)];
  const seen = new Set();
  const rows = [];
  for (const name of order) {
    if (seen.has(name) || !(name in data)) continue;
    seen.add(name);
    const spec = fields[name] || {};
    let shown = data[name];
    if (spec.option_labels && typeof shown === 'string' && spec.option_labels[shown]) shown = text(spec.option_labels[shown]);
    rows.push(h('dt', {}, spec.label ? text(spec.label) : name), h('dd', { dataset: { field: name } }, value(shown)));
  }
  return h('dl', { class: 'facts case-data' }, rows);
}

// ---- the actions -------------------------------------------------------------------------

function actionInput(name, spec) {
  const schema = spec.schema || {};
  const pointer = `/fields/${name}`;
  let input;
  if (Array.isArray(schema.enum)) {
    input = h('select', {}, h('option', { value: '' }, '—'), schema.enum.map((v) => h('option', { value: JSON.stringify(v) }, String(v))));
    input.dataset.kind = 'enum';
  } else if (schema.type === 'boolean') {
    input = h('input', { type: 'checkbox' });
    input.dataset.kind = 'boolean';
  } else if (schema.type === 'integer' || schema.type === 'number') {
    input = h('input', { type: 'number', step: schema.type === 'integer' ? '1' : 'any' });
    input.dataset.kind = 'number';
  } else {
    input = h('input', { type: schema.format === 'date' ? 'date' : 'text' });
    input.dataset.kind = 'string';
  }
  input.name = name;
  const built = field(text(spec.title) || name, input, { pointer, required: spec.required });
  if (input.dataset.kind === 'boolean') built.wrap.classList.add('inline');
  return built;
}

function readInput(input) {
  switch (input.dataset.kind) {
    case 'boolean': return input.checked;
    case 'number': return input.value === '' ? undefined : Number(input.value);
    case 'enum': return input.value === '' ? undefined : JSON.parse(input.value);
    default: return input.value === '' ? undefined : input.value;
  }
}

function actionForm(view, kase, action, onDone, stateTitle) {
  const inputs = Object.entries(action.fields).map(([name, spec]) => actionInput(name, spec));
  const comment = action.comment === 'none' ? null
    : field(t('inbox.comment'), h('textarea', { rows: 3, name: 'comment' }), { pointer: '/comment', required: action.comment === 'required' });
  const titleId = uid('action');
  const outcome = h('div', { 'aria-live': 'polite' });
  const form = h('form', {
    class: 'card action', 'aria-labelledby': titleId, novalidate: true, dataset: { action: action.name },
    onsubmit: async (event) => {
      event.preventDefault();
      clearErrors(form);
      outcome.replaceChildren();
      const body = { fields: {} };
      for (const built of inputs) {
        const v = readInput(built.input);
        if (v !== undefined) body.fields[built.input.name] = v;
      }
      if (comment && comment.input.value.trim()) body.comment = comment.input.value.trim();
      submit.disabled = true;
      try {
        const response = await request('POST', `${unitPath(kase.tenant, 'cases', kase.id, 'actions', action.name)}`,
          { body, raw: true, headers: { 'If-Match': kase.etag } });
        const answer = await response.json();
        if (response.status === 202) {
          show(outcome, pendingSignature(view, kase, answer, onDone));
        } else {
          await onDone(t(action.signature_required ? 'inbox.signed_done' : 'inbox.done', { action: text(action.title) || action.name }));
        }
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.status === 412) {
          show(outcome, h('div', { class: 'problem conflict', role: 'alert' },
            h('strong', {}, t('inbox.conflict_title')), h('p', {}, t('inbox.conflict')),
            button(t('inbox.reload'), () => onDone(null), { kind: 'primary' })));
        } else {
          showProblem(form, err, outcome);
        }
      } finally {
        submit.disabled = false;
      }
    },
  });
  const submit = button(action.signature_required ? t('inbox.sign_and_act', { action: text(action.title) || action.name })
    : t('inbox.act', { action: text(action.title) || action.name }), null, { kind: 'primary', type: 'submit' });
  form.append(
    h('h3', { id: titleId }, text(action.title) || action.name, ' ', h('span', { class: 'muted' }, `→ ${stateTitle(action.to)}`)),
    action.signature_required ? h('p', { class: 'notice warn' }, t('inbox.needs_signature', { role: action.signer || '' })) : null,
    inputs.map((i) => i.wrap), comment?.wrap, submit, outcome);
  return form;
}

function pendingSignature(view, kase, signature, onDone) {
  const status = h('p', { role: 'status', class: 'notice warn', dataset: { signature: signature.id } },
    t('inbox.signature_pending', { provider: providerName(signature.provider) }));
  const box = h('div', { class: 'card pending-signature' }, h('h3', {}, t('inbox.signature_waiting')), status,
    signature.expires_at ? h('p', {}, t('inbox.signature_expires'), ' ', when(signature.expires_at)) : null,
    signature.instructions ? h('details', {}, h('summary', {}, t('inbox.signature_instructions')),
      h('pre', {}, JSON.stringify(signature.instructions, null, 2))) : null);
  const path = unitPath(kase.tenant, 'cases', kase.id, 'signatures', signature.id);
  const poll = async () => {
    if (!box.isConnected) return;
    try {
      const now = await api.get(path);
      if (now.status === 'completed') { await onDone(t('inbox.signature_completed')); return; }
      if (now.status === 'failed' || now.status === 'expired') {
        show(status, t(`inbox.signature_${now.status}`), now.failure?.detail ? ` ${now.failure.detail}` : '');
        status.className = 'problem';
        return;
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    }
    setTimeout(poll, PENDING_POLL_MS);
  };
  setTimeout(poll, PENDING_POLL_MS);
  return box;
}

// ---- claiming ----------------------------------------------------------------------------

/** In a state where one official takes the case (assignment "claim"): take it, give it back,
 * or see who has it. The service decides who may; its refusal is shown as it comes. */
function claimPanel(view, kase, workflow, onDone) {
  const state = workflow?.states?.find((st) => st.name === kase.state.name);
  if (kase.status !== 'open' || state?.assignment !== 'claim' || !view.can('cases:act')) return null;
  const outcome = h('div', { 'aria-live': 'polite' });
  const call = (what, message) => async () => {
    try {
      await api.post(unitPath(kase.tenant, 'cases', kase.id, what));
      await onDone(message);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      show(outcome, problemBanner(err));
    }
  };
  let body;
  if (!kase.assignee) {
    body = [h('p', {}, t('inbox.claim_needed')),
      button(t('inbox.claim'), call('claim', t('inbox.claimed')), { kind: 'primary', id: 'claim-case' })];
  } else if (kase.assignee === view.me.id) {
    body = [h('p', {}, t('inbox.claimed_by_you')),
      button(t('inbox.release'), call('release', t('inbox.released')), { id: 'release-case' })];
  } else {
    body = [h('p', {}, t('inbox.claimed_by_other', { who: kase.assignee }))];
  }
  return h('div', { class: 'claim notice warn', id: 'claim-panel' }, body, outcome);
}

// ---- the case view -----------------------------------------------------------------------

async function caseView(view, caseId) {
  const path = unitPath(view.unit, 'cases', caseId);
  const { data: kase, etag } = await getWithEtag(path);
  kase.etag = etag || kase.etag;
  // Everything the case names, at once; only the pinned form waits for the submission.
  const [submission, history, signatures, attachments, workflowVersion] = await Promise.all([
    api.get(unitPath(view.unit, 'submissions', kase.submission_id)).catch(() => null),
    api.get(`${path}/history`).catch(() => []),
    api.get(`${path}/signatures`).catch(() => []),
    api.get(unitPath(view.unit, 'submissions', kase.submission_id, 'attachments')).catch(() => []),
    api.get(unitPath(view.unit, 'workflows', kase.workflow.key, 'versions', kase.workflow.version)).catch(() => null),
  ]);
  const workflow = workflowVersion?.definition;
  const actionTitle = (name) => text(workflow?.actions?.find((a) => a.name === name)?.title) || name;
  const stateTitle = (name) => (name ? text(workflow?.states?.find((st) => st.name === name)?.title) || name : '∅');
  let definition = null;
  if (submission) {
    const pinned = submission.form;
    definition = (await api.get(unitPath(view.unit, 'forms', pinned.key, 'versions', pinned.version)).catch(() => null))?.definition;
  }
  const messages = h('div', { 'aria-live': 'polite', id: 'case-messages' });
  const reload = async (message) => {
    await view.refresh();
    if (message) document.getElementById('case-messages')?.append(notice(message));
  };
  view.main.append(
    heading(`${definition ? text(definition.title) : kase.form} · ${kase.id.slice(0, 8)}`),
    messages,
    h('section', { class: 'card', 'aria-labelledby': 'case-summary' },
      h('h2', { id: 'case-summary' }, t('inbox.summary')),
      h('dl', { class: 'facts' },
        h('dt', {}, t('inbox.state')), h('dd', { id: 'case-state', dataset: { state: kase.state.name } }, text(kase.state.title) || kase.state.name),
        h('dt', {}, t('inbox.sla')), h('dd', {}, slaBadge(kase.sla.status), ' ', kase.sla.state?.due_at ? when(kase.sla.state.due_at) : ''),
        h('dt', {}, t('inbox.unit')), h('dd', {}, view.units.get(kase.tenant)?.name || kase.tenant),
        h('dt', {}, t('inbox.workflow')), h('dd', {}, `${kase.workflow.key} v${kase.workflow.version}`),
        h('dt', {}, t('inbox.form_version')), h('dd', {}, submission ? `${submission.form.key} v${submission.form.version}` : kase.form),
        kase.outcome ? [h('dt', {}, t('inbox.outcome')), h('dd', {}, kase.outcome)] : null,
        h('dt', {}, t('common.created_at')), h('dd', {}, when(kase.created_at)))),
    h('div', { class: 'columns case-columns' },
      h('div', {},
        h('section', { class: 'card', 'aria-labelledby': 'case-actions' }, h('h2', { id: 'case-actions' }, t('inbox.actions')),
          claimPanel(view, kase, workflow, reload),
          kase.actions.length ? kase.actions.map((a) => actionForm(view, kase, a, reload, stateTitle)) : h('p', { class: 'empty' }, t('inbox.no_actions'))),
        h('section', { class: 'card', 'aria-labelledby': 'case-signatures' }, h('h2', { id: 'case-signatures' }, t('inbox.signatures')),
          table([
            { label: t('inbox.action'), cell: (s) => s.action },
            { label: t('common.status'), cell: (s) => h('span', { class: `badge signature-${s.status}` }, t(`inbox.signature_status_${s.status}`)) },
            { label: t('inbox.provider'), cell: (s) => providerName(s.provider) },
            { label: t('inbox.requested'), cell: (s) => when(s.requested_at) },
            { label: t('inbox.evidence'), cell: (s) => (s.status === 'completed' ? button(t('inbox.download_signature'),
              () => download(`${path}/signatures/${s.id}/signature`), { kind: 'link' }) : '') },
          ], signatures, { empty: t('inbox.no_signatures') }))),
      h('div', {},
        h('section', { class: 'card', 'aria-labelledby': 'case-data' }, h('h2', { id: 'case-data' }, t('inbox.data')),
          kase.masked_fields.length ? h('p', { class: 'muted' }, t('inbox.masked', { fields: kase.masked_fields.join(', ') })) : null,
          dataView(kase.data, definition)),
        h('section', { class: 'card', 'aria-labelledby': 'case-attachments' }, h('h2', { id: 'case-attachments' }, t('inbox.attachments')),
          table([
            { label: t('inbox.file'), cell: (a) => button(a.filename, () => download(unitPath(view.unit, 'submissions', kase.submission_id, 'attachments', a.id)), { kind: 'link' }) },
            { label: t('inbox.field'), cell: (a) => (definition?.ui_schema?.fields?.[a.field]?.label ? text(definition.ui_schema.fields[a.field].label) : a.field) },
            { label: t('inbox.size'), cell: (a) => `${Math.ceil(a.size / 1024)} KB` },
          ], attachments, { empty: t('inbox.no_attachments') })),
        h('section', { class: 'card', 'aria-labelledby': 'case-history' }, h('h2', { id: 'case-history' }, t('inbox.history')),
          h('ol', { class: 'history', id: 'history' }, history.map((entry) => h('li', { dataset: { kind: entry.kind } },
            when(entry.at), ' · ', h('strong', { dataset: { action: entry.action || '' } }, entry.action ? actionTitle(entry.action) : t(`inbox.kind_${entry.kind}`)),
            ' · ', entry.actor,
            entry.from || entry.to ? h('span', { class: 'muted' }, ` (${stateTitle(entry.from)} → ${stateTitle(entry.to)})`) : null,
            entry.signature_ref ? h('span', { class: 'badge' }, t('inbox.signed')) : null,
            entry.comment ? h('blockquote', {}, entry.comment) : null)))))));
}
