// Small DOM helpers: elements are built from data with text nodes, never
// from HTML strings, so nothing a server returns is interpreted as markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export function id(prefix) { return prefix + '-' + (++uid); }

// field is a label and its control, linked.
export function field(label, control, hint) {
  const cid = control.id || id('f');
  control.id = cid;
  return h('div', { class: 'field' }, h('label', { for: cid }, label), control, hint ? h('small', {}, hint) : null);
}

export function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 4000);
}

export function fmtTime(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return isNaN(d) ? ts : d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// pretty returns JSON text indented, or the text as it is.
export function pretty(text) {
  if (!text) return '';
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

// errorBox shows an error; with retry, a Try again button that calls it.
export function errorBox(err, retry) {
  const msg = err.message || String(err);
  const hint = err.status === 401 ? ' Sign out and sign in again with a valid token.' : '';
  return h('p', { class: 'error', role: 'alert' }, msg + hint,
    retry ? [' ', h('button', { type: 'button', class: 'secondary small', onclick: retry }, 'Try again')] : null);
}
