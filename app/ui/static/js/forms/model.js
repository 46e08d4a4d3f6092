// The form builder's model: a definition (forms/form.schema.json) plus the ordered list of
// what the visual editor shows (fields and section headings). Everything the editor does not
// understand (other schema keywords, $defs, allOf rules) is kept as it is.

export const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

/** The palette: widget → a new property's schema and UI entry. */
export const FIELD_TYPES = ['text', 'number', 'date', 'select', 'multiselect', 'checkbox', 'file',
  'address', 'citizen-id', 'group', 'section'];

const FILE_SCHEMA = () => ({
  type: 'object',
  required: ['ten_tep', 'sha256', 'kich_thuoc', 'loai_noi_dung'],
  additionalProperties: false,
  properties: {
    ten_tep: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^/\\\\]+$' },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    kich_thuoc: { type: 'integer', minimum: 1, maximum: 10485760 },
    loai_noi_dung: { enum: ['application/pdf', 'image/jpeg', 'image/png'] },
  },
});

const ADDRESS_SCHEMA = () => ({
  type: 'object',
  required: ['tinh', 'xa', 'chi_tiet'],
  additionalProperties: false,
  properties: {
    tinh: { type: 'string', pattern: '^[0-9]{2}$', title: 'Tỉnh, thành phố' },
    xa: { type: 'string', pattern: '^[0-9]{5}$', title: 'Xã, phường, đặc khu' },
    chi_tiet: { type: 'string', minLength: 1, maxLength: 200, title: 'Số nhà, đường, thôn, tổ dân phố' },
  },
});

export function newSchema(widget) {
  switch (widget) {
    case 'number': return { type: 'number' };
    case 'date': return { type: 'string', format: 'date' };
    case 'select': return { enum: ['a', 'b'] };
    case 'multiselect': return { type: 'array', items: { enum: ['a', 'b'] }, uniqueItems: true };
    case 'checkbox': return { type: 'boolean' };
    case 'file': return FILE_SCHEMA();
    case 'address': return ADDRESS_SCHEMA();
    case 'citizen-id': return { type: 'string', pattern: '^[0-9]{12}$' };
    case 'group': return { type: 'array', items: { type: 'object', additionalProperties: false, required: [], properties: {} } };
    default: return { type: 'string', maxLength: 200 };
  }
}

export function newUi(widget, n) {
  const entry = { label: { vi: `Trường ${n}`, en: `Field ${n}` }, widget };
  if (widget === 'select' || widget === 'multiselect') {
    entry.option_labels = { a: { vi: 'Lựa chọn A', en: 'Option A' }, b: { vi: 'Lựa chọn B', en: 'Option B' } };
  }
  if (widget === 'address' || widget === 'citizen-id') entry.personal_data = 'basic';
  return entry;
}

export const clone = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

/** Follow a local "#/..." reference (a few levels); the schema itself when it is not one. */
export function resolve(schema, root) {
  let node = schema;
  for (let i = 0; i < 8 && node && typeof node.$ref === 'string' && node.$ref.startsWith('#/'); i += 1) {
    let target = root;
    for (const part of node.$ref.slice(2).split('/')) {
      target = target && typeof target === 'object' ? target[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    }
    node = target;
  }
  return node && typeof node === 'object' ? node : {};
}

/** The widget a property shows with: its UI entry's, else guessed from the schema. */
export function widgetOf(definition, name) {
  const ui = definition.ui_schema.fields[name] || {};
  if (ui.widget) return ui.widget;
  const schema = resolve(definition.schema.properties?.[name], definition.schema);
  if (Array.isArray(schema.enum)) return 'select';
  if (schema.type === 'boolean' || schema.const === true) return 'checkbox';
  if (schema.type === 'array') return Array.isArray(resolve(schema.items, definition.schema).enum) ? 'multiselect' : 'group';
  if (schema.type === 'integer' || schema.type === 'number') return 'number';
  if (schema.format === 'date') return 'date';
  if (schema.type === 'object') {
    const props = schema.properties || {};
    if ('tinh' in props && 'xa' in props) return 'address';
    if ('sha256' in props) return 'file';
  }
  return 'text';
}

/** The values a select or multi-select allows (from enum, through items and $ref). */
export function optionsOf(definition, name) {
  let schema = resolve(definition.schema.properties?.[name], definition.schema);
  if (schema.type === 'array') schema = resolve(schema.items, definition.schema);
  if (Array.isArray(schema.enum)) return schema.enum;
  if ('const' in schema) return [schema.const];
  return null;
}

/** The editor's view of a definition: {definition, items}. Fields outside any section come
 * first, then each section followed by its fields. */
export function fromDefinition(source) {
  const definition = clone(source);
  definition.schema ||= { $schema: DRAFT, type: 'object' };
  definition.schema.properties ||= {};
  definition.ui_schema ||= { fields: {} };
  definition.ui_schema.fields ||= {};
  const names = Object.keys(definition.schema.properties);
  const order = [...(definition.ui_schema.order || []).filter((n) => names.includes(n)),
    ...names.filter((n) => !(definition.ui_schema.order || []).includes(n))];
  const sections = definition.ui_schema.sections || [];
  const sectioned = new Set(sections.flatMap((s) => s.fields));
  const items = order.filter((n) => !sectioned.has(n)).map((name) => ({ kind: 'field', name }));
  for (const section of sections) {
    items.push({ kind: 'section', id: section.id, title: clone(section.title) });
    for (const name of section.fields) items.push({ kind: 'field', name });
  }
  return { definition, items };
}

/** The definition the editor's state stands for. */
export function toDefinition(model) {
  const definition = clone(model.definition);
  const fieldNames = model.items.filter((i) => i.kind === 'field').map((i) => i.name);
  definition.ui_schema.order = fieldNames;
  const sections = [];
  let current = null;
  for (const item of model.items) {
    if (item.kind === 'section') {
      current = { id: item.id, title: clone(item.title), fields: [] };
      sections.push(current);
    } else if (current) {
      current.fields.push(item.name);
    }
  }
  if (sections.length) definition.ui_schema.sections = sections;
  else delete definition.ui_schema.sections;
  if (!fieldNames.length) delete definition.ui_schema.order;
  return definition;
}

export function isRequired(definition, name) {
  return (definition.schema.required || []).includes(name);
}

export function setRequired(definition, name, on) {
  const list = (definition.schema.required || []).filter((n) => n !== name);
  if (on) list.push(name);
  if (list.length) definition.schema.required = list;
  else delete definition.schema.required;
}

/** A fresh property name: field_1, field_2, ... */
export function freshName(definition, base = 'truong') {
  let n = Object.keys(definition.schema.properties).length + 1;
  while (definition.schema.properties[`${base}_${n}`]) n += 1;
  return { name: `${base}_${n}`, n };
}

export const NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

/** Rename a property everywhere the builder puts names (schema, UI, conditions). */
export function rename(model, from, to) {
  const { definition } = model;
  const rebuild = (object) => Object.fromEntries(Object.entries(object).map(([k, v]) => [k === from ? to : k, v]));
  definition.schema.properties = rebuild(definition.schema.properties);
  definition.ui_schema.fields = rebuild(definition.ui_schema.fields);
  if (definition.schema.required) definition.schema.required = definition.schema.required.map((n) => (n === from ? to : n));
  for (const item of model.items) if (item.kind === 'field' && item.name === from) item.name = to;
  for (const ui of Object.values(definition.ui_schema.fields)) {
    if (ui.visible_when && typeof ui.visible_when === 'object') ui.visible_when = renameInCondition(ui.visible_when, from, to);
  }
}

function renameInCondition(node, from, to) {
  if (Array.isArray(node)) return node.map((n) => renameInCondition(n, from, to));
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'properties' && value && typeof value === 'object') {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k === from ? to : k, renameInCondition(v, from, to)]));
    } else if (key === 'required' && Array.isArray(value)) {
      out.required = value.map((n) => (n === from ? to : n));
    } else if (key === 'const' || key === 'enum') {
      out[key] = value;
    } else {
      out[key] = renameInCondition(value, from, to);
    }
  }
  return out;
}

/** Fields whose visible_when mentions `name`. */
export function dependents(definition, name) {
  return Object.entries(definition.ui_schema.fields)
    .filter(([, ui]) => ui.visible_when && JSON.stringify(ui.visible_when).includes(`"${name}"`))
    .map(([n]) => n);
}

// ---- conditions built by pointing and clicking -------------------------------------------

/** A rule {field, op: 'equals'|'not_equals'|'contains', value} as a JSON Schema condition. */
export function ruleToCondition(rule) {
  const test = rule.op === 'contains' ? { contains: { const: rule.value } } : { const: rule.value };
  const holds = { properties: { [rule.field]: test }, required: [rule.field] };
  return rule.op === 'not_equals' ? { not: holds } : holds;
}

/** The rule a condition was built from, or null when it is not one the builder makes. */
export function conditionToRule(condition) {
  if (!condition || typeof condition !== 'object') return null;
  let op = 'equals';
  let node = condition;
  if (Object.keys(node).length === 1 && node.not && typeof node.not === 'object') {
    op = 'not_equals';
    node = node.not;
  }
  const keys = Object.keys(node).sort().join(',');
  if (keys !== 'properties,required' || !Array.isArray(node.required) || node.required.length !== 1) return null;
  const field = node.required[0];
  const props = node.properties || {};
  if (Object.keys(props).length !== 1 || !props[field]) return null;
  const test = props[field];
  if (Object.keys(test).length !== 1) return null;
  if ('const' in test) return { field, op, value: test.const };
  if (op === 'equals' && test.contains && Object.keys(test.contains).join() === 'const') {
    return { field, op: 'contains', value: test.contains.const };
  }
  return null;
}

// ---- evaluating conditions in the preview (a subset of JSON Schema; unknown keywords pass) --

const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function typeMatches(type, value) {
  const types = [type].flat();
  return types.some((t) => (t === 'integer' ? Number.isInteger(value)
    : t === 'number' ? typeof value === 'number'
      : t === 'array' ? Array.isArray(value)
        : t === 'object' ? value !== null && typeof value === 'object' && !Array.isArray(value)
          : t === 'null' ? value === null : typeof value === t)); // eslint-disable-line valid-typeof
}

export function holds(schema, value, root) {
  if (schema === true || schema === undefined) return true;
  if (schema === false) return false;
  if (typeof schema !== 'object' || schema === null) return true;
  if (schema.$ref) return holds(resolve(schema, root), value, root);
  if ('const' in schema && !equal(schema.const, value)) return false;
  if (Array.isArray(schema.enum) && !schema.enum.some((v) => equal(v, value))) return false;
  if (schema.type && !typeMatches(schema.type, value)) return false;
  const isObject = value !== null && typeof value === 'object' && !Array.isArray(value);
  if (isObject && Array.isArray(schema.required) && !schema.required.every((n) => n in value)) return false;
  if (isObject && schema.properties) {
    for (const [name, sub] of Object.entries(schema.properties)) {
      if (name in value && !holds(sub, value[name], root)) return false;
    }
  }
  if (Array.isArray(value) && schema.contains && !value.some((v) => holds(schema.contains, v, root))) return false;
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) return false;
    if (typeof schema.maximum === 'number' && value > schema.maximum) return false;
  }
  if (schema.not !== undefined && holds(schema.not, value, root)) return false;
  if (Array.isArray(schema.allOf) && !schema.allOf.every((s) => holds(s, value, root))) return false;
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some((s) => holds(s, value, root))) return false;
  if (Array.isArray(schema.oneOf) && schema.oneOf.filter((s) => holds(s, value, root)).length !== 1) return false;
  return true;
}

/** Parse JSON, or say where it breaks: {value} or {error: {line, column, message}}. */
export function parseJson(textValue) {
  try {
    return { value: JSON.parse(textValue) };
  } catch (err) {
    const match = /position (\d+)/.exec(err.message);
    let line = null;
    let column = null;
    if (match) {
      const before = textValue.slice(0, Number(match[1]));
      line = before.split('\n').length;
      column = before.length - before.lastIndexOf('\n');
    } else {
      const lc = /line (\d+) column (\d+)/.exec(err.message);
      if (lc) { line = Number(lc[1]); column = Number(lc[2]); }
    }
    return { error: { line, column, message: err.message } };
  }
}

/** Where a JSON Pointer's value roughly starts in pretty-printed JSON text (for selecting it). */
export function locate(textValue, pointer) {
  let at = 0;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) continue;
    const found = textValue.indexOf(JSON.stringify(part), at);
    if (found < 0) break;
    at = found;
  }
  return at;
}

/** The top-level field a pointer into the definition is about, if any. */
export function fieldOfPointer(pointer) {
  const match = /^\/(?:schema\/properties|ui_schema\/fields)\/([^/]+)/.exec(pointer || '');
  return match ? match[1].replace(/~1/g, '/').replace(/~0/g, '~') : null;
}
