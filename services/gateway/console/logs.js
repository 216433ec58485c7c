// The Event logs tab: newest first, live, filters, paging, Details with
// every attempt, Redeliver.
import { q } from './api.js';
import { h, clear, field, toast, errorBox, fmtTime } from './dom.js';
import { exchangeRequest, exchangeResponse } from './events.js';

const PAGE = 50;
const STATUSES = ['pending', 'retrying', 'succeeded', 'failed', 'dead', 'cancelled'];
const CLASSES = [['2xx', '2xx'], ['3xx', '3xx'], ['4xx', '4xx'], ['5xx', '5xx'], ['none', 'no response']];

export function logsTab(panel, { api, hubId }) {
  const base = '/hubs/' + hubId;
  let filters = {};
  let tokens = ['']; // the page tokens of the pages visited; the last is the current page's
  let rows = new Map(); // id -> { log, tr }
  let stopTail = () => {};
  let stopped = false;

  const sel = (name, label, options) => field(label, h('select', { name }, h('option', { value: '' }, 'Any'), options.map(([v, l]) => h('option', { value: v }, l))));
  const typeSel = sel('event_type', 'Event type', []);
  const urlSel = sel('url', 'URL', []);
  const form = h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); apply(); } },
    typeSel,
    sel('status', 'Status', STATUSES.map((s) => [s, s])),
    urlSel,
    sel('response_class', 'Response', CLASSES),
    field('Domain event id', h('input', { name: 'domain_event_id', type: 'text', spellcheck: 'false' })),
    field('From', h('input', { name: 'since', type: 'datetime-local', step: '1' })),
    field('To', h('input', { name: 'until', type: 'datetime-local', step: '1' })),
    h('div', { class: 'row end' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', class: 'secondary', onclick: () => { form.reset(); apply(); } }, 'Clear')));
  const search = h('input', { type: 'search', name: 'search', placeholder: 'dlv_…, msg_… or a domain event id', spellcheck: 'false' });
  const searchForm = h('form', { class: 'row', role: 'search', onsubmit: (ev) => { ev.preventDefault(); find(search.value.trim()); } },
    field('Search by id', search), h('button', { type: 'submit', class: 'secondary' }, 'Search'));
  const live = h('span', { class: 'live', role: 'status' }, 'Connecting…');
  const table = h('div', { class: 'logtable' });
  const prev = h('button', { type: 'button', class: 'secondary', onclick: () => { tokens.pop(); page(); } }, '← Newer');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Older →');
  const pager = h('div', { class: 'row pager' }, prev, next);
  clear(panel, h('section', { class: 'card' },
    h('div', { class: 'row spread' }, h('h2', {}, 'Event logs'), live),
    h('details', { class: 'filterbox' }, h('summary', {}, 'Filters'), form), searchForm, table, pager));

  // The choices of two filters come from the server; without them the
  // filter still works as Any, and says why it has no choices.
  const options = (fieldEl, what, load) => load().then((list) => {
    const s = fieldEl.querySelector('select');
    for (const [v, l] of list) s.append(h('option', { value: v }, l));
  }).catch((e) => fieldEl.append(h('small', { class: 'error' }, 'Could not load the ' + what + ': ' + e.message)));
  options(typeSel, 'event types', () => api.get('/event-types').then((r) => (r.webhook_event_types || []).map((t) => [t, t])));
  options(urlSel, 'URLs', () => api.get(base + '/config').then((c) => (c.callback_urls || []).map((u) => [u.url, u.url + (u.description ? ' · ' + u.description : '')])));

  apply();
  return () => { stopped = true; stopTail(); };

  function apply() {
    const fd = new FormData(form);
    filters = {};
    for (const [k, v] of fd.entries()) {
      if (!v) continue;
      filters[k] = (k === 'since' || k === 'until') ? new Date(v).toISOString() : v;
    }
    tokens = [''];
    page();
    follow();
  }

  async function page() {
    const token = tokens[tokens.length - 1];
    clear(table, h('p', { class: 'state' }, 'Loading deliveries…'));
    try {
      // A filtered page can come back empty with a token (the server stops
      // after a bounded scan): follow it a few times before showing it.
      let resp = await api.get(base + '/event-logs' + q({ ...filters, page_size: PAGE, page_token: token }));
      for (let hops = 0; !(resp.event_logs || []).length && resp.next_page_token && hops < 20 && !stopped; hops++) {
        clear(table, h('p', { class: 'state' }, 'Searching older deliveries…'));
        resp = await api.get(base + '/event-logs' + q({ ...filters, page_size: PAGE, page_token: resp.next_page_token }));
      }
      if (stopped) return;
      render(resp.event_logs || []);
      const more = resp.next_page_token || '';
      next.disabled = !more;
      next.onclick = () => { tokens.push(more); page(); };
      prev.disabled = tokens.length < 2;
    } catch (e) {
      if (!stopped) clear(table, errorBox(e, page));
    }
  }

  function render(logs) {
    rows = new Map();
    if (!logs.length) {
      clear(table, h('p', { class: 'state empty' }, Object.keys(filters).length ? 'No delivery matches these filters.' : 'No deliveries yet. They appear here as soon as the hub sends webhooks (turn on event triggers and add a URL).'));
      return;
    }
    const tbody = h('tbody');
    for (const l of logs) tbody.append(row(l));
    clear(table, h('table', { class: 'logs' },
      h('thead', {}, h('tr', {}, ['Time', 'Webhook event', 'URL', 'Status', 'Response', 'Attempts', ''].map((c) => h('th', { scope: 'col' }, c || h('span', { class: 'sr' }, 'Details'))))),
      tbody));
  }

  function row(l) {
    const tr = h('tr', { 'data-id': l.id },
      h('td', { 'data-label': 'Time' }, fmtTime(l.created_at)),
      h('td', { 'data-label': 'Webhook event' }, h('code', {}, l.event_type), l.test ? h('span', { class: 'badge' }, 'test') : null),
      h('td', { 'data-label': 'URL', class: 'url' }, l.url),
      h('td', { 'data-label': 'Status' }, h('span', { class: 'badge ' + statusClass(l.status) }, l.status)),
      h('td', { 'data-label': 'Response' }, l.response_status_code ? String(l.response_status_code) : '—'),
      h('td', { 'data-label': 'Attempts' }, String(l.attempts)),
      h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => details(l.id) }, 'Details', h('span', { class: 'sr' }, ' of ' + l.event_type + ' ' + l.id))));
    rows.set(l.id, { log: l, tr });
    return tr;
  }

  // follow runs the live tail with the current filters: changed rows are
  // updated in place; new ones go on top of the first page.
  function follow() {
    stopTail();
    clear(live, 'Connecting…');
    live.className = 'live';
    const tailFilters = { ...filters };
    stopTail = api.tail(base + '/event-logs:tail' + q(tailFilters), {
      onLive: () => { clear(live, '● Live'); live.className = 'live on'; },
      onResult: (res) => {
        const l = res && res.event_log;
        if (!l) return;
        const seen = rows.get(l.id);
        if (seen) {
          const tr = row(l);
          seen.tr.replaceWith(tr);
          return;
        }
        if (tokens.length > 1 || stopped) return; // not on the newest page
        let tbody = table.querySelector('tbody');
        if (!tbody) { render([l]); return; }
        tbody.prepend(row(l));
        while (tbody.children.length > PAGE) {
          const last = tbody.lastElementChild;
          rows.delete(last.dataset.id);
          last.remove();
        }
      },
      onEnd: (e) => {
        clear(live, 'Not live: ' + e.message + ' ', h('button', { type: 'button', class: 'link', onclick: follow }, 'Reconnect'));
        live.className = 'live off';
      },
    });
  }

  async function find(text) {
    if (!text) return apply();
    if (text.startsWith('dlv_')) return details(text);
    form.reset();
    filters = text.startsWith('msg_') ? { event_id: text } : { domain_event_id: text };
    tokens = [''];
    page();
    follow();
  }

  async function details(id) {
    const body = h('div', {}, h('p', { class: 'state' }, 'Loading…'));
    const dialog = h('dialog', { class: 'wide', 'aria-labelledby': 'details-title' },
      h('div', { class: 'row spread' }, h('h2', { id: 'details-title' }, 'Delivery ' + id),
        h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close() }, 'Close')),
      body);
    dialog.addEventListener('close', () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    try {
      const resp = await api.get(base + '/event-logs/' + encodeURIComponent(id));
      const l = resp.event_log;
      const redeliver = h('button', { type: 'button', class: 'primary', onclick: async () => {
        redeliver.disabled = true;
        try {
          const r = await api.post(base + '/event-logs/' + encodeURIComponent(id) + ':redeliver');
          toast('Redelivered as ' + r.event_log.id);
          dialog.close();
        } catch (e) {
          toast(e.message);
          redeliver.disabled = false;
        }
      } }, 'Redeliver');
      clear(body,
        h('dl', { class: 'facts' },
          fact('Webhook event', h('code', {}, l.event_type)), fact('Status', h('span', { class: 'badge ' + statusClass(l.status) }, l.status)),
          fact('URL', l.url), fact('Created', fmtTime(l.created_at)), fact('Webhook id', h('code', {}, l.event_id)),
          fact('Domain event', h('code', {}, (l.domain_event_type || '') + ' ' + (l.domain_event_id || ''))),
          l.redelivery_of ? fact('Redelivery of', h('code', {}, l.redelivery_of)) : null,
          l.next_attempt_at ? fact('Next attempt', fmtTime(l.next_attempt_at)) : null),
        h('div', { class: 'row' }, redeliver),
        (resp.attempts || []).length ? (resp.attempts || []).map((a) => h('section', { class: 'attempt' },
          h('h3', {}, 'Attempt ' + a.number + ' · ' + fmtTime(a.started_at) + ' · ', h('span', { class: 'badge ' + statusClass(a.status) }, a.status)),
          h('div', { class: 'pair' },
            h('div', {}, h('h4', {}, 'Request'), exchangeRequest({ ...(a.request || {}), body: (a.request && a.request.body) || resp.request_body || '' })),
            h('div', {}, h('h4', {}, 'Response'), exchangeResponse(a.response || {})))))
          : h('p', { class: 'state empty' }, 'No attempt yet: the delivery is queued.'));
    } catch (e) {
      clear(body, errorBox(e));
    }
  }
}

function fact(k, v) { return [h('dt', {}, k), h('dd', {}, v)]; }

function statusClass(s) {
  return { succeeded: 'ok', failed: 'bad', dead: 'bad', retrying: 'warn', pending: 'warn', cancelled: 'muted' }[s] || '';
}
