// Users, roles, grants and API clients of a unit. The UI offers only what the API would
// accept from this official: roles no stronger than their own permissions here, permissions
// they hold, and tree nodes where they may grant.

import { api, ApiError, listAll, unitPath } from '../api.js';
import { h, show, uid } from '../dom.js';
import { t } from '../i18n.js';
import { button, clearErrors, field, heading, input, notice, select, showProblem, table, tabs, when } from '../ui.js';

const TABS = ['users', 'roles', 'grants', 'clients'];

function grantable(roles, held) {
  return roles.filter((role) => role.permissions.every((p) => held.has(p)));
}

function roleChecklist(roles, name, legend) {
  return h('fieldset', { class: 'checklist', dataset: { pointer: `/${name}` }, id: uid('roles') }, h('legend', {}, legend),
    roles.map((role) => {
      const id = uid('role');
      return h('label', { for: id }, h('input', { type: 'checkbox', id, name, value: role.key }), ' ', role.name, ' ', h('span', { class: 'muted' }, `(${role.key})`));
    }));
}

/** A secret the service shows once: to be copied now. */
function oneTime(label, secret) {
  return h('p', { class: 'notice warn one-time', role: 'status' }, label, ' ', h('code', {}, secret));
}

const checked = (scope, name) => [...scope.querySelectorAll(`input[name="${name}"]:checked`)].map((c) => c.value);

function submitting(form, work) {
  return async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      await work();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      showProblem(form, err);
    }
  };
}

async function usersTab(view, box, roles, held) {
  const result = h('div', { 'aria-live': 'polite' });
  const list = h('div', {});
  const username = field(t('access.username'), input({ autocomplete: 'off' }), { pointer: '/username', required: true });
  const display = field(t('access.display_name'), input(), { pointer: '/display_name', required: true });
  const email = field(t('access.email'), input({ type: 'email' }), { pointer: '/email' });
  const totp = h('input', { type: 'checkbox', id: uid('totp') });
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'new-user' });
  form.addEventListener('submit', submitting(form, async () => {
    const body = { username: username.input.value.trim(), display_name: display.input.value.trim(), roles: checked(form, 'roles'), totp_required: totp.checked };
    if (email.input.value.trim()) body.email = email.input.value.trim();
    const created = await api.post(unitPath(view.unit, 'users'), body);
    show(result, notice(t('access.user_created', { username: created.username })),
      created.initial_password ? oneTime(t('access.initial_password'), created.initial_password) : null,
      created.totp_uri ? oneTime(t('access.totp_uri'), created.totp_uri) : null);
    form.reset();
    await drawUsers();
  }));
  form.append(h('h2', { id: 'new-user' }, t('access.new_user')), username.wrap, display.wrap, email.wrap,
    h('div', { class: 'field inline' }, totp, h('label', { for: totp.id }, t('access.totp_required'))),
    roleChecklist(grantable(roles, held), 'roles', t('access.roles_here')),
    button(t('common.create'), null, { kind: 'primary', type: 'submit' }));
  const drawUsers = async () => show(list, table([
    { label: t('access.username'), cell: (u) => u.username },
    { label: t('access.display_name'), cell: (u) => u.display_name },
    { label: t('common.status'), cell: (u) => t(`common.status_${u.status}`) },
    { label: 'TOTP', cell: (u) => (u.totp_required ? t('common.yes') : t('common.no')) },
    { label: t('access.last_login'), cell: (u) => when(u.last_login_at) },
    { label: t('common.actions'), cell: (u) => (view.can('users:write') ? h('div', { class: 'row' },
      button(u.status === 'active' ? t('access.disable') : t('access.enable'),
        async () => { await api.patch(unitPath(view.unit, 'users', u.id), { status: u.status === 'active' ? 'disabled' : 'active' }); await drawUsers(); }),
      button(t('access.reset_password'), async () => {
        const reset = await api.post(unitPath(view.unit, 'users', u.id, 'password'), {});
        show(result, oneTime(t('access.new_password', { username: u.username }), reset.initial_password));
      }, { 'aria-label': t('access.reset_password_of', { username: u.username }) }),
      u.totp_required ? button(t('access.new_totp'), async () => {
        const enrolled = await api.post(unitPath(view.unit, 'users', u.id, 'totp'));
        show(result, oneTime(t('access.totp_uri'), enrolled.totp_uri));
      }, { 'aria-label': t('access.new_totp_of', { username: u.username }) }) : null) : '') },
  ], await listAll(unitPath(view.unit, 'users')), { caption: t('access.users') }));
  await drawUsers();
  show(box, list, result, view.can('users:write') ? form : null);
}

async function rolesTab(view, box, roles, held) {
  const key = field(t('access.role_key'), input({ autocomplete: 'off' }), { pointer: '/key', required: true, help: t('access.role_key_help') });
  const name = field(t('common.name'), input(), { pointer: '/name', required: true });
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'new-role' });
  form.addEventListener('submit', submitting(form, async () => {
    await api.post(unitPath(view.unit, 'roles'), { key: key.input.value.trim(), name: name.input.value.trim(), permissions: checked(form, 'permissions') });
    await view.refresh();
  }));
  form.append(h('h2', { id: 'new-role' }, t('access.new_role')), key.wrap, name.wrap,
    h('fieldset', { class: 'checklist', dataset: { pointer: '/permissions' }, id: 'permission-checklist' }, h('legend', {}, t('access.permissions')),
      h('p', { class: 'help' }, t('access.permissions_help')),
      [...held].sort().map((permission) => {
        const id = uid('perm');
        return h('label', { for: id }, h('input', { type: 'checkbox', id, name: 'permissions', value: permission }), ' ', permission);
      })),
    button(t('common.create'), null, { kind: 'primary', type: 'submit' }));
  show(box, table([
    { label: t('access.role_key'), cell: (r) => r.key },
    { label: t('common.name'), cell: (r) => r.name },
    { label: t('access.source'), cell: (r) => (r.builtin ? t('access.builtin') : r.inherited ? t('access.inherited', { unit: r.tenant || '—' }) : t('access.own')) },
    { label: t('access.permissions'), cell: (r) => h('span', { class: 'muted' }, r.permissions.join(', ')) },
  ], roles, { caption: t('access.roles') }), view.can('roles:write') ? form : null);
}

async function grantsTab(view, box, roles, held) {
  const [grants, users] = await Promise.all([
    listAll(unitPath(view.unit, 'grants'), { recursive: true }), listAll(unitPath(view.unit, 'users'))]);
  const below = [...view.units.values()].filter((u) => view.permissionsAt(u.code).has('grants:write') && (u.code === view.unit || isBelow(view, u.code, view.unit)));
  const who = field(t('access.who'), select(users.map((u) => [u.id, `${u.display_name} (${u.username})`])), { pointer: '/principal_id', required: true });
  const role = field(t('access.role'), select(grantable(roles, held).map((r) => [r.key, r.name])), { pointer: '/role', required: true });
  const node = field(t('access.node'), select(below.map((u) => [u.code, `${'\u00a0\u00a0'.repeat(u.depth)}${u.name} (${u.code})`]), { value: view.unit }),
    { help: t('access.node_help') });
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'new-grant' });
  form.addEventListener('submit', submitting(form, async () => {
    await api.post(unitPath(node.input.value, 'grants'), { principal_id: who.input.value, role: role.input.value });
    await view.refresh();
  }));
  form.append(h('h2', { id: 'new-grant' }, t('access.new_grant')), who.wrap, role.wrap, node.wrap, button(t('access.grant'), null, { kind: 'primary', type: 'submit' }));
  show(box, table([
    { label: t('access.who'), cell: (g) => `${g.principal_name} (${g.principal_kind})` },
    { label: t('access.role'), cell: (g) => g.role },
    { label: t('access.node'), cell: (g) => g.tenant },
    { label: t('access.granted_by'), cell: (g) => g.granted_by || '' },
    { label: t('common.actions'), cell: (g) => (view.permissionsAt(g.tenant).has('grants:write') ? button(t('access.revoke'),
      async () => { await api.delete(unitPath(g.tenant, 'grants', g.id)); await view.refresh(); }, { kind: 'danger' }) : '') },
  ], grants, { caption: t('access.grants') }), view.can('grants:write') && users.length ? form : null);
}

function isBelow(view, code, ancestor) {
  let unit = view.units.get(code);
  while (unit?.parent) {
    if (unit.parent === ancestor) return true;
    unit = view.units.get(unit.parent);
  }
  return false;
}

async function clientsTab(view, box, roles, held) {
  const result = h('div', { 'aria-live': 'polite' });
  const list = h('div', {});
  const name = field(t('common.name'), input(), { pointer: '/name', required: true });
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'new-client' });
  form.addEventListener('submit', submitting(form, async () => {
    const created = await api.post(unitPath(view.unit, 'clients'), { name: name.input.value.trim(), roles: checked(form, 'client_roles') });
    show(result, notice(t('access.client_created', { id: created.client_id })),
      oneTime(t('access.client_secret'), created.client_secret));
    form.reset();
    await drawClients();
  }));
  form.append(h('h2', { id: 'new-client' }, t('access.new_client')), name.wrap,
    roleChecklist(grantable(roles, held), 'client_roles', t('access.roles_here')),
    button(t('common.create'), null, { kind: 'primary', type: 'submit' }));
  const drawClients = async () => show(list, table([
    { label: 'client_id', cell: (c) => h('code', {}, c.client_id) },
    { label: t('common.name'), cell: (c) => c.name },
    { label: t('access.roles'), cell: (c) => c.roles.join(', ') },
    { label: t('common.status'), cell: (c) => t(`common.status_${c.status}`) },
    { label: t('access.last_token'), cell: (c) => when(c.last_used_at) },
    { label: t('common.actions'), cell: (c) => (view.can('clients:write') ? h('div', { class: 'row' },
      button(t('access.rotate_secret'), async () => {
        const rotated = await api.post(unitPath(view.unit, 'clients', c.client_id, 'secret'), {});
        show(result, oneTime(t('access.client_secret'), rotated.client_secret),
          rotated.previous_secret_expires_at ? h('p', { class: 'help' }, t('access.old_secret_until'), ' ', when(rotated.previous_secret_expires_at)) : null);
      }, { 'aria-label': t('access.rotate_secret_of', { name: c.name }) }),
      button(c.status === 'active' ? t('access.disable') : t('access.enable'), async () => {
        await api.patch(unitPath(view.unit, 'clients', c.client_id), { status: c.status === 'active' ? 'disabled' : 'active' });
        await drawClients();
      })) : '') },
  ], await listAll(unitPath(view.unit, 'clients')), { caption: t('access.clients') }));
  await drawClients();
  show(box, list, result, view.can('clients:write') ? form : null);
}

export async function render(view) {
  const current = TABS.includes(view.rest[0]) ? view.rest[0] : 'users';
  const held = view.permissionsAt(view.unit);
  const roles = await listAll(unitPath(view.unit, 'roles'));
  const box = h('div', { role: 'tabpanel', 'aria-labelledby': `tab-${current}` });
  view.main.append(heading(t('access.title')),
    tabs(TABS.map((key) => [key, t(`access.tab_${key}`)]), current, (key) => view.go(view.unit, 'access', key)), box);
  const render = { users: usersTab, roles: rolesTab, grants: grantsTab, clients: clientsTab }[current];
  await render(view, box, roles, held);
}
