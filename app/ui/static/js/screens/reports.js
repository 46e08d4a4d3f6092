// The report builder: pick a form, filters, groups and aggregates by pointing and clicking;
// run it (the API's preview), see a table and a bar chart, save it, and export saved reports
// as CSV or XLSX. The database computes everything; nothing is aggregated in the browser.

import { api, ApiError, download, listAll, unitPath } from '../api.js';
import { h, show, uid } from '../dom.js';
import { formatNumber, t, text } from '../i18n.js';
import { button, clearErrors, field, heading, input, notice, select, showProblem, table } from '../ui.js';

const OPERATORS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'exists'];
const FUNCTIONS = ['count', 'distinct', 'sum', 'avg', 'min', 'max'];
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A horizontal bar chart of the last numeric column, one bar per row. */
function chart(result) {
  const measure = result.columns.length - 1;
  const rows = result.rows.filter((r) => typeof r[measure] === 'number').slice(0, 30);
  if (!rows.length) return null;
  const max = Math.max(...rows.map((r) => r[measure]), 1);
  const bar = 22;
  const labelWidth = 220;
  const width = 640;
  const label = (r) => r.slice(0, measure).map((x) => (x === null ? '∅' : x)).join(' · ') || t('reports.total');
  return svg('svg', { viewBox: `0 0 ${width} ${rows.length * bar + 10}`, role: 'img', class: 'chart',
    'aria-label': t('reports.chart_label', { measure: result.columns[measure] }) },
  ...rows.map((r, i) => svg('g', { transform: `translate(0 ${i * bar + 5})` },
    svg('text', { x: labelWidth - 6, y: 15, 'text-anchor': 'end', class: 'chart-label' }, label(r).slice(0, 32)),
    svg('rect', { x: labelWidth, y: 2, height: bar - 6, width: Math.max(1, ((width - labelWidth - 70) * r[measure]) / max), class: 'chart-bar' }),
    svg('text', { x: labelWidth + 6 + ((width - labelWidth - 70) * r[measure]) / max, y: 15, class: 'chart-value' }, formatNumber(r[measure])))));
}

/** A column's heading: the unit, the month, a field's label, or "Sum (label)". */
function columnLabel(column, definition) {
  const labels = definition?.ui_schema?.fields || {};
  const fieldLabel = (name) => (labels[name]?.label ? text(labels[name].label) : name);
  if (column === '$tenant') return t('reports.by_unit');
  if (column === '$month') return t('reports.by_month');
  const aggregate = /^(\w+)\((.*)\)$/.exec(column);
  if (aggregate && FUNCTIONS.includes(aggregate[1])) return `${t(`reports.fn_${aggregate[1]}`)} (${fieldLabel(aggregate[2])})`;
  if (FUNCTIONS.includes(column)) return t(`reports.fn_${column}`);
  return fieldLabel(column);
}

function resultView(result, definition, units) {
  const cell = (column, value) => {
    if (value === null || value === undefined) return '∅';
    if (column === '$tenant' && units.has(value)) return `${units.get(value).name} (${value})`;
    const options = definition?.ui_schema?.fields?.[column]?.option_labels;
    if (options && typeof value === 'string' && options[value]) return text(options[value]);
    return formatNumber(value);
  };
  return h('section', { class: 'card', 'aria-labelledby': 'report-result' },
    h('h2', { id: 'report-result' }, t('reports.result', { count: result.rows.length })),
    result.truncated ? notice(t('reports.truncated'), 'warn') : null,
    chart(result),
    table(result.columns.map((c, i) => ({ label: columnLabel(c, definition), cell: (row) => cell(c, row[i]) })), result.rows,
      { caption: t('reports.table_caption'), empty: t('reports.no_rows') }));
}

function fieldsOf(definition) {
  const properties = definition?.schema?.properties || {};
  const labels = definition?.ui_schema?.fields || {};
  return Object.keys(properties).map((name) => [name, labels[name]?.label ? `${text(labels[name].label)} (${name})` : name]);
}

export async function render(view) {
  const path = unitPath(view.unit, 'reports');
  const [forms, savedRows] = await Promise.all([listAll(unitPath(view.unit, 'forms')), listAll(path)]);
  let definition = null;
  const formPick = field(t('reports.form'), select([['', '—'], ...forms.map((f) => [f.key, f.key])], { name: 'form' }), { pointer: '/form', required: true });
  const status = field(t('reports.status'), select(['submitted', 'draft', 'any'].map((s) => [s, t(`reports.status_${s}`)])), { pointer: '/status' });
  const rollup = field(t('reports.rollup'), select([['', t('reports.rollup_none')], ['children', t('reports.rollup_children')]]), { pointer: '/rollup' });
  const minGroup = field(t('reports.min_group'), input({ type: 'number', min: 1, max: 1000, value: '1' }), { pointer: '/min_group_size', help: t('reports.min_group_help') });
  const groups = h('fieldset', { class: 'checklist', id: 'group-by' }, h('legend', {}, t('reports.group_by')));
  const filterRows = h('div', { class: 'rows', id: 'filters' });
  const aggregateRows = h('div', { class: 'rows', id: 'aggregates' });
  const output = h('div', { 'aria-live': 'polite' });
  const fieldOptions = () => [['', '—'], ...fieldsOf(definition)];

  const filterRow = () => {
    const index = filterRows.children.length;
    const row = h('div', { class: 'row filter' });
    const f = field(t('reports.field'), select(fieldOptions()), { pointer: `/filters/${index}/field` });
    const op = field(t('reports.operator'), select(OPERATORS.map((o) => [o, t(`reports.op_${o}`)])), { pointer: `/filters/${index}/op` });
    const v = field(t('reports.value'), input(), { pointer: `/filters/${index}/value`, help: t('reports.value_help') });
    row.append(f.wrap, op.wrap, v.wrap, button(t('common.delete'), () => row.remove()));
    filterRows.append(row);
  };
  const aggregateRow = (fn = 'count') => {
    const index = aggregateRows.children.length;
    const row = h('div', { class: 'row aggregate' });
    const f = field(t('reports.function'), select(FUNCTIONS.map((x) => [x, t(`reports.fn_${x}`)]), { value: fn }), { pointer: `/aggregates/${index}/fn` });
    const of = field(t('reports.of_field'), select(fieldOptions()), { pointer: `/aggregates/${index}/field` });
    row.append(f.wrap, of.wrap, button(t('common.delete'), () => row.remove()));
    aggregateRows.append(row);
  };
  const refreshFields = async () => {
    definition = formPick.input.value
      ? (await api.get(unitPath(view.unit, 'forms', formPick.input.value))).definition : null;
    show(groups, h('legend', {}, t('reports.group_by')), [['$tenant', t('reports.by_unit')], ['$month', t('reports.by_month')], ...fieldsOf(definition)]
      .map(([name, label]) => { const id = uid('g'); return h('label', { for: id }, h('input', { type: 'checkbox', id, value: name }), ' ', label); }));
    filterRows.replaceChildren();
    aggregateRows.replaceChildren();
    aggregateRow('count');
  };
  formPick.input.addEventListener('change', refreshFields);

  const parseValue = (raw) => { try { return JSON.parse(raw); } catch { return raw; } };
  const build = () => {
    const body = {
      key: keyInput.input.value.trim() || 'xem-truoc', title: { vi: titleVi.input.value.trim() || 'Xem trước', en: titleEn.input.value.trim() || 'Preview' },
      form: formPick.input.value, status: status.input.value,
      group_by: [...groups.querySelectorAll('input:checked')].map((c) => c.value),
      filters: [...filterRows.children].map((row) => {
        const [f, op, v] = row.querySelectorAll('select, input');
        return op.value === 'exists' ? { field: f.value, op: op.value, value: v.value !== 'false' } : { field: f.value, op: op.value, value: parseValue(v.value) };
      }),
      aggregates: [...aggregateRows.children].map((row) => {
        const [fn, of] = row.querySelectorAll('select');
        return of.value ? { fn: fn.value, field: of.value } : { fn: fn.value };
      }),
      min_group_size: Number(minGroup.input.value || 1),
    };
    if (rollup.input.value) body.rollup = rollup.input.value;
    return body;
  };
  const keyInput = field(t('reports.key'), input({ name: 'key', autocomplete: 'off' }), { pointer: '/key', help: t('reports.key_help') });
  const titleVi = field(t('reports.title_vi'), input({ name: 'title_vi' }), { pointer: '/title/vi' });
  const titleEn = field(t('reports.title_en'), input({ name: 'title_en' }), { pointer: '/title/en' });
  const form = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'report-builder', onsubmit: (e) => e.preventDefault() },
    h('h2', { id: 'report-builder' }, t('reports.builder')),
    h('div', { class: 'row' }, formPick.wrap, status.wrap, rollup.wrap, minGroup.wrap),
    h('fieldset', {}, h('legend', {}, t('reports.filters')), filterRows, button(t('reports.add_filter'), filterRow, { id: 'add-filter' })),
    groups,
    h('fieldset', {}, h('legend', {}, t('reports.aggregates')), aggregateRows, button(t('reports.add_aggregate'), () => aggregateRow(), { id: 'add-aggregate' })),
    h('div', { class: 'row' },
      button(t('reports.run'), async () => {
        clearErrors(form);
        try { show(output, resultView(await api.post(`${path}/run`, build()), definition, view.units)); } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          output.replaceChildren();
          showProblem(form, err);
        }
      }, { kind: 'primary', id: 'run-report' })),
    h('h3', {}, t('reports.save_title')),
    h('div', { class: 'row' }, keyInput.wrap, titleVi.wrap, titleEn.wrap,
      button(t('reports.save'), async () => {
        clearErrors(form);
        try {
          await api.post(path, build());
          await view.refresh();
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          showProblem(form, err);
        }
      }, { id: 'save-report' })));

  view.main.append(heading(t('reports.title')),
    view.can('reports:write') ? form : null, output,
    h('section', { class: 'card', 'aria-labelledby': 'saved-reports' }, h('h2', { id: 'saved-reports' }, t('reports.saved')),
      table([
        { label: t('reports.key'), cell: (r) => r.key },
        { label: t('common.name'), cell: (r) => text(r.definition?.title || r.title) },
        { label: t('common.actions'), cell: (r) => h('div', { class: 'row' },
          button(t('reports.run'), async () => {
            const form = (await api.get(unitPath(view.unit, 'forms', r.definition?.form || r.form)).catch(() => null))?.definition;
            show(output, resultView(await api.post(`${path}/${encodeURIComponent(r.key)}/run`, {}), form, view.units));
          }),
          button('CSV', () => download(`${path}/${encodeURIComponent(r.key)}/export`, { format: 'csv' })),
          button('XLSX', () => download(`${path}/${encodeURIComponent(r.key)}/export`, { format: 'xlsx' }))) },
      ], savedRows, { empty: t('reports.none_saved') })));
}
