// Building the page from elements, never from HTML strings: text is always text, so data
// from the API cannot inject markup (and the CSP forbids inline script anyway).

const PROPERTIES = new Set(['value', 'checked', 'selected', 'disabled', 'indeterminate']);
let counter = 0;

/** A new element: h('button', {class: 'primary', onclick: fn}, 'Lưu'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (PROPERTIES.has(key)) {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's content. */
export function show(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A page-unique id, for label/for and aria-describedby pairs. */
export function uid(prefix = 'f') {
  counter += 1;
  return `${prefix}-${counter}`;
}
