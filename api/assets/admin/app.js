// The saas-litellm admin panel: one page that drives the JSON API with the session cookie.
// No framework and nothing fetched from elsewhere. Text from the API is only ever put into the
// page as text nodes (never as markup), so names like "<script>" show as typed.
'use strict';

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
document.getElementById('logout-csrf').value = CSRF;

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Money arrives as exact JSON numbers; keep every non-integer number as its source text so
// nothing is rounded through floating point before it is shown.
function parseJson(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === 'number' && context && typeof context.source === 'string'
        && /[.eE]/.test(context.source)) {
      return context.source;
    }
    return value;
  });
}

// A decimal the operator typed, sent as an exact JSON number (or as text the API will refuse
// with its own message).
function decimal(text) {
  const t = String(text).trim();
  if (/^-?\d+(\.\d+)?$/.test(t) && typeof JSON.rawJSON === 'function') return JSON.rawJSON(t);
  return t;
}

// The highest log position our own commands wrote at: reads wait until their read model has
// applied it, so a page shown after a change always includes the change.
let writtenPosition = 0;

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = CSRF;
  else if (writtenPosition > 0) headers['X-Wait-For-Position'] = String(writtenPosition);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', 'The service could not be reached. Check that saas-api is running, then retry.');
  }
  const text = await response.text();
  let data = null;
  try { data = text ? parseJson(text) : null; } catch (e) { data = null; }
  if (!response.ok) {
    const error = data && data.error;
    if (response.status === 401 && error && error.code === 'session_expired') {
      location.assign('/admin/login?expired=true');
    }
    let message = error ? error.message : `The service answered ${response.status} ${response.statusText || ''}`.trim() + '.';
    const retry = response.headers.get('retry-after');
    if (retry) message += ` Retry in ${retry} s.`;
    throw new ApiError(response.status, error ? error.code : `http_${response.status}`, message);
  }
  const position = Number(response.headers.get('x-event-position'));
  if (method !== 'GET' && position > writtenPosition) writtenPosition = position;
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const view = document.getElementById('view');
const flash = document.getElementById('flash');

function setView(...children) {
  view.replaceChildren();
  append(view, children);
}

function say(message, kind = 'info') {
  flash.replaceChildren(h('p', { class: `notice ${kind}` }, message));
  clearTimeout(say.timer);
  say.timer = setTimeout(() => flash.replaceChildren(), 6000);
}

function errorBox(error) {
  const code = error.code ? ` (${error.code})` : '';
  return h('p', { class: 'notice error', role: 'alert' }, `${error.message}${code}`);
}

// ---------------------------------------------------------------- formatting

function num(v) { return v === null || v === undefined ? NaN : Number(v); }

function money(v) {
  if (v === null || v === undefined) return '—';
  const n = num(v);
  if (!Number.isFinite(n)) return String(v);
  const digits = Math.abs(n) >= 1 || n === 0 ? 2 : 6;
  return `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: digits })}`;
}

function exactMoney(v) {
  return h('span', { title: `exactly ${v}` }, money(v));
}

function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

function pct(v) { return v === null || v === undefined ? '—' : `${num(v).toFixed(1)} %`; }

function badge(text, kind) { return h('span', { class: `badge ${kind || text}` }, text); }

function table(headers, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), children);
}

function link(href, text) { return h('a', { href }, text); }

// ---------------------------------------------------------------- forms

// A form whose submit calls `action(values)`; errors appear in place, the button is disabled
// while the request runs.
function form(fields, submitText, action, opts = {}) {
  const errors = h('div', { class: 'form-errors' });
  const button = h('button', { type: 'submit' }, submitText);
  const el = h('form', { class: `form ${opts.inline ? 'inline' : ''}`, novalidate: true }, fields, button, errors);
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    button.disabled = true;
    try {
      const values = Object.fromEntries(new FormData(el).entries());
      values.$all = (name) => new FormData(el).getAll(name);
      await action(values, el);
    } catch (error) {
      errors.replaceChildren(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

function field(label, name, attrs = {}) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 7)}`;
  const input = attrs.options
    ? h('select', { id, name }, attrs.options.map(([value, text]) =>
        h('option', { value, selected: value === attrs.value }, text)))
    : h('input', { id, name, type: attrs.type || 'text', value: attrs.value, placeholder: attrs.placeholder,
        required: attrs.required, inputmode: attrs.inputmode, autocomplete: 'off' });
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

function checkboxes(label, name, options, checked = []) {
  return h('fieldset', { class: 'checks' }, h('legend', {}, label),
    options.length
      ? options.map((o) => h('label', { class: 'check' },
          h('input', { type: 'checkbox', name, value: o, checked: checked.includes(o) }), ' ', o))
      : h('span', { class: 'muted' }, 'none available'));
}

function optionalInt(v) {
  const t = String(v ?? '').trim();
  if (t === '') return null;
  return /^\d+$/.test(t) ? Number(t) : t;
}

// A confirmation in the page (not the browser's dialog), for destructive actions.
function confirmAction(message, confirmText = 'Confirm') {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm' },
      h('p', {}, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => { dialog.close(); resolve(false); } }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', onclick: () => { dialog.close(); resolve(true); } }, confirmText)));
    dialog.addEventListener('close', () => { dialog.remove(); resolve(false); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ---------------------------------------------------------------- charts (SVG)

const SVG = 'http://www.w3.org/2000/svg';
const PALETTE = ['#2563eb', '#16a34a', '#ea580c', '#9333ea', '#0891b2', '#ca8a04', '#dc2626', '#4b5563'];

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Set through the CSSOM: the panel's CSP allows no inline style attributes.
function swatch(colour) {
  const el = h('span', { class: 'swatch' });
  el.style.background = colour;
  return el;
}

// A `/api/usage/daily` answer as stacked bars per day, one colour per model.
function barChart(title, daily) {
  const days = daily.days;
  const seriesNames = daily.models;
  const valueOf = (day, model) => day.models[model];
  const width = 720; const height = 240; const left = 64; const bottom = 28; const top = 12;
  const plotW = width - left - 8; const plotH = height - top - bottom;
  const totals = days.map((d) => seriesNames.reduce((sum, n) => sum + (num(valueOf(d, n)) || 0), 0));
  const max = Math.max(...totals, 0);
  const scale = max > 0 ? plotH / max : 0;
  const barW = days.length ? plotW / days.length : plotW;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart', 'aria-label': title });
  svg.append(s('title', {}, title));
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    svg.append(s('line', { x1: left, x2: width - 8, y1: y, y2: y, class: 'grid' }));
    svg.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' }, money((max * i) / 4)));
  }
  days.forEach((d, i) => {
    let y = top + plotH;
    seriesNames.forEach((name, k) => {
      const v = num(valueOf(d, name)) || 0;
      if (v <= 0) return;
      const hgt = Math.max(v * scale, 1);
      y -= hgt;
      const rect = s('rect', { x: left + i * barW + 1, y, width: Math.max(barW - 2, 1), height: hgt, fill: PALETTE[k % PALETTE.length] });
      rect.append(s('title', {}, `${d.date} ${name}: ${money(valueOf(d, name))}`));
      svg.append(rect);
    });
    const every = Math.ceil(days.length / 8);
    if (i % every === 0) {
      svg.append(s('text', { x: left + i * barW + barW / 2, y: height - 8, 'text-anchor': 'middle', class: 'axis' }, d.date.slice(5)));
    }
  });
  const legend = h('ul', { class: 'legend' }, seriesNames.map((n, k) =>
    h('li', {}, swatch(PALETTE[k % PALETTE.length]), n)));
  const total = totals.reduce((a, b) => a + b, 0);
  return h('figure', { class: 'chart-box' }, svg, legend,
    h('figcaption', {}, `${title}: ${money(total)} over ${days.length} days`));
}

// ---------------------------------------------------------------- pages

async function dashboardPage() {
  // An account scoped to organizations has no view over every one: its teams are home.
  if (ME.organizations) { location.hash = '#/teams'; return; }
  const d = await api('GET', '/api/dashboard');
  const teams = d.teams || {};
  const daily = await api('GET', '/api/usage/daily');
  setView(
    h('h1', {}, 'Dashboard'),
    h('div', { class: 'tiles' },
      tile('Organizations', d.organizations),
      tile('Active teams', teams.active || 0),
      tile('Suspended teams', teams.suspended || 0),
      tile('Credits', exactMoney(d.credits)),
      tile('Spent', exactMoney(d.spend)),
      tile('Remaining', exactMoney(d.remaining)),
      tile('Spend today', exactMoney(d.today.spend), `${d.today.requests} requests`),
      tile('Spend this month', exactMoney(d.this_month.spend), `${d.this_month.requests} requests`)),
    section('Spend, last 30 days', barChart('Spend per day by model', daily)),
    section(`Teams at ${d.near_budget_percent} % of their budget or more`,
      table(['Team', 'Mode', 'Credits', 'Spent', 'Used'], d.near_budget.map((t) => [
        link(`#/teams/${enc(t.team_id)}`, t.team_alias), t.budget_mode, exactMoney(t.credits), exactMoney(t.spend),
        badge(pct(t.percent_used), num(t.percent_used) >= 100 ? 'danger' : 'warn')]), 'No team is near its budget.')),
    section('LiteLLM sync',
      d.sync.enabled
        ? h('div', {},
            h('p', {}, Object.entries(d.sync.teams).map(([k, v]) => `${k}: ${v}`).join(' · ') || 'No teams yet.'),
            table(['Team', 'Status', 'Attempts', 'Last error'], d.sync.not_in_sync.map((r) => [
              link(`#/teams/${enc(r.team_id)}`, r.team_id), badge(r.status), r.attempts ?? 0, r.last_error || '—']), 'Every team is in sync.'))
        : h('p', { class: 'muted' }, 'Sync is off: LITELLM_MASTER_KEY is not set.')));
}

function tile(label, value, note) {
  return h('div', { class: 'tile' }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value' }, value),
    note ? h('div', { class: 'tile-note' }, note) : null);
}

async function organizationsPage() {
  const data = await api('GET', '/api/organizations?limit=200');
  setView(
    h('h1', {}, 'Organizations'),
    !can('manage') ? null : section('New organization', form([
      field('Name', 'name', { required: true }),
      field('Organization id (optional)', 'organization_id', { placeholder: 'generated if empty' }),
      field('LiteLLM organization id (optional)', 'litellm_organization_id'),
    ], 'Create organization', async (v) => {
      const body = { name: v.name };
      if (v.organization_id.trim()) body.organization_id = v.organization_id.trim();
      if (v.litellm_organization_id.trim()) body.litellm_organization_id = v.litellm_organization_id.trim();
      const created = await api('POST', '/api/organizations/create', body);
      say(`Organization ${created.name} created.`);
      location.hash = `#/organizations/${enc(created.organization_id)}`;
    })),
    section('All organizations', table(['Name', 'Id', 'LiteLLM id', 'Created'], data.organizations
      .filter((o) => !o.deleted_at)
      .map((o) => [link(`#/organizations/${enc(o.organization_id)}`, o.name), h('code', {}, o.organization_id),
        o.litellm_organization_id || '—', when(o.created_at)]), 'No organizations yet: create the first one above.')));
}

async function organizationPage(id) {
  const [org, teams, usage, daily] = await Promise.all([
    api('GET', `/api/organizations/${enc(id)}`),
    api('GET', `/api/organizations/${enc(id)}/teams?limit=200`),
    api('GET', `/api/organizations/${enc(id)}/usage`),
    api('GET', `/api/usage/daily${query({ organization_id: id })}`),
  ]);
  setView(
    h('p', { class: 'crumbs' }, link('#/organizations', 'Organizations'), ' / ', org.name),
    h('h1', {}, org.name),
    h('dl', { class: 'facts' },
      fact('Id', h('code', {}, org.organization_id)), fact('LiteLLM id', org.litellm_organization_id || '—'),
      fact('Created', when(org.created_at)), fact('Teams', teams.teams.length),
      fact('Spent (all time)', exactMoney(usage.total_spend)), fact('Requests', usage.request_count)),
    can('manage') ? h('p', {}, link(`#/teams/new?organization_id=${enc(id)}`, 'New team in this organization')) : null,
    section('Spend, last 30 days', barChart(`Spend per day of ${org.name}`, daily)),
    section('Teams', teamsTable(teams.teams)),
    !can('manage') ? null : section('Rename', form([field('New name', 'name', { value: org.name, required: true })], 'Rename', async (v) => {
      await api('POST', `/api/organizations/${enc(id)}/rename`, { name: v.name });
      say('Organization renamed.');
      route();
    }, { inline: true })),
    !can('manage') ? null : section('Delete', h('p', { class: 'muted' }, 'An organization can be deleted once it has no teams.'),
      actionButton('Delete organization', 'danger', async () => {
        if (!await confirmAction(`Delete the organization ${org.name}? This cannot be undone.`, 'Delete')) return;
        await api('POST', `/api/organizations/${enc(id)}/delete`, {});
        say('Organization deleted.');
        location.hash = '#/organizations';
      })));
}

function fact(label, value) { return [h('dt', {}, label), h('dd', {}, value)]; }

// A button whose action's error shows next to it.
function actionButton(text, kind, action) {
  const errors = h('span', { class: 'form-errors' });
  const button = h('button', { type: 'button', class: kind }, text);
  button.addEventListener('click', async () => {
    errors.replaceChildren();
    button.disabled = true;
    try { await action(); } catch (error) { errors.replaceChildren(errorBox(error)); } finally { button.disabled = false; }
  });
  return h('span', { class: 'action' }, button, errors);
}

async function catalogModels() {
  try {
    return { models: (await api('GET', '/api/litellm/models')).models, note: null };
  } catch (error) {
    return { models: [], note: `LiteLLM's catalog is not available (${error.message}); type model names instead.` };
  }
}

function modelsFromForm(v) {
  const picked = v.$all('model');
  const typed = String(v.extra_models || '').split(',').map((m) => m.trim()).filter(Boolean);
  return [...new Set([...picked, ...typed])];
}

async function modelGroupsPage() {
  const [groups, catalog] = await Promise.all([api('GET', '/api/model-groups?limit=200'), catalogModels()]);
  setView(
    h('h1', {}, 'Model groups'),
    !can('manage') ? null : section('New model group', form([
      field('Group name', 'group_name', { required: true, placeholder: 'e.g. chat-fast' }),
      field('Description (optional)', 'description'),
      checkboxes("Models from LiteLLM's catalog", 'model', catalog.models),
      catalog.note ? h('p', { class: 'muted' }, catalog.note) : null,
      field('Other model names (comma separated)', 'extra_models'),
    ], 'Create group', async (v) => {
      const body = { group_name: v.group_name.trim(), models: modelsFromForm(v) };
      if (v.description.trim()) body.description = v.description.trim();
      const created = await api('POST', '/api/model-groups/create', body);
      say(`Model group ${created.group_name} created.`);
      location.hash = `#/model-groups/${enc(created.group_name)}`;
    })),
    section('All groups', table(['Group', 'Models', 'Checked against LiteLLM'], groups.model_groups
      .filter((g) => !g.deleted_at)
      .map((g) => [link(`#/model-groups/${enc(g.group_name)}`, g.group_name), g.models.join(', '), g.verified ? 'yes' : 'no']),
      'No model groups yet.')));
}

async function modelGroupPage(name) {
  const [group, catalog] = await Promise.all([api('GET', `/api/model-groups/${enc(name)}`), catalogModels()]);
  const known = [...new Set([...catalog.models, ...group.models])].sort();
  setView(
    h('p', { class: 'crumbs' }, link('#/model-groups', 'Model groups'), ' / ', group.group_name),
    h('h1', {}, group.group_name),
    group.description ? h('p', {}, group.description) : null,
    !can('manage') ? section('Models', h('p', {}, group.models.join(', '))) : section('Models', form([
      checkboxes('Models', 'model', known, group.models),
      catalog.note ? h('p', { class: 'muted' }, catalog.note) : null,
      field('Other model names (comma separated)', 'extra_models'),
    ], 'Save models', async (v) => {
      await api('POST', `/api/model-groups/${enc(name)}/models`, { models: modelsFromForm(v) });
      say('Models saved; teams using this group are re-synced.');
      route();
    })),
    !can('manage') ? null : section('Delete', h('p', { class: 'muted' }, 'A group can be deleted once no team uses it.'),
      actionButton('Delete group', 'danger', async () => {
        if (!await confirmAction(`Delete the model group ${name}?`, 'Delete')) return;
        await api('POST', `/api/model-groups/${enc(name)}/delete`, {});
        say('Model group deleted.');
        location.hash = '#/model-groups';
      })));
}

function teamsTable(teams) {
  return table(['Team', 'Status', 'Mode', 'Credits', 'Spent', 'Remaining', 'Groups'], teams.map((t) => [
    link(`#/teams/${enc(t.team_id)}`, t.team_alias), badge(t.status), t.budget_mode,
    exactMoney(t.credits), exactMoney(t.spend), exactMoney(t.remaining_budget), t.model_groups.join(', ') || '—']),
  'No teams.');
}

async function teamsPage(params) {
  const filters = { q: params.get('q') || '', status: params.get('status') || '', organization_id: params.get('organization_id') || '' };
  const [teams, orgs] = await Promise.all([
    api('GET', `/api/teams${query({ ...filters, limit: 200 })}`),
    api('GET', '/api/organizations?limit=200'),
  ]);
  const orgOptions = [['', 'All organizations'], ...orgs.organizations.filter((o) => !o.deleted_at).map((o) => [o.organization_id, o.name])];
  const search = h('form', { class: 'form inline filters', role: 'search' },
    field('Search', 'q', { value: filters.q, placeholder: 'alias or id' }),
    field('Status', 'status', { value: filters.status, options: [['', 'Live'], ['active', 'Active'], ['suspended', 'Suspended'], ['deleted', 'Deleted']] }),
    field('Organization', 'organization_id', { value: filters.organization_id, options: orgOptions }),
    h('button', { type: 'submit' }, 'Filter'));
  search.addEventListener('submit', (event) => {
    event.preventDefault();
    const v = Object.fromEntries(new FormData(search).entries());
    location.hash = `#/teams${query(v)}`;
  });
  setView(
    h('h1', {}, 'Teams'),
    can('manage') ? h('p', {}, link('#/teams/new', 'New team')) : null,
    search,
    section(`${teams.teams.length} team${teams.teams.length === 1 ? '' : 's'}`, teamsTable(teams.teams)));
}

async function newTeamPage(params) {
  const [orgs, groups] = await Promise.all([api('GET', '/api/organizations?limit=200'), api('GET', '/api/model-groups?limit=200')]);
  const live = orgs.organizations.filter((o) => !o.deleted_at);
  if (!live.length) {
    setView(h('h1', {}, 'New team'), h('p', { class: 'notice info' }, 'Create an organization first: ', link('#/organizations', 'Organizations')));
    return;
  }
  const result = h('div', {});
  setView(
    h('p', { class: 'crumbs' }, link('#/teams', 'Teams'), ' / new'),
    h('h1', {}, 'New team'),
    result,
    form([
      field('Organization', 'organization_id', { value: params.get('organization_id') || live[0].organization_id, options: live.map((o) => [o.organization_id, o.name]) }),
      field('Team name (alias)', 'team_alias', { required: true }),
      field('Team id (optional)', 'team_id', { placeholder: 'generated if empty' }),
      checkboxes('Model groups', 'group', groups.model_groups.filter((g) => !g.deleted_at).map((g) => g.group_name)),
      field('Credits (USD)', 'credits', { value: '0', inputmode: 'decimal' }),
      field('Budget mode', 'budget_mode', { value: 'hard', options: [['hard', 'Hard: stop when credits run out'], ['soft', 'Soft: warn only']] }),
      field('Requests per minute (optional)', 'rpm_limit', { inputmode: 'numeric' }),
      field('Tokens per minute (optional)', 'tpm_limit', { inputmode: 'numeric' }),
      field('Markup %', 'markup_percent', { value: '0', inputmode: 'decimal' }),
    ], 'Create team', async (v) => {
      const body = {
        organization_id: v.organization_id, team_alias: v.team_alias, model_groups: v.$all('group'),
        credits: decimal(v.credits || '0'), budget_mode: v.budget_mode, markup_percent: decimal(v.markup_percent || '0'),
        rpm_limit: optionalInt(v.rpm_limit), tpm_limit: optionalInt(v.tpm_limit),
      };
      if (v.team_id.trim()) body.team_id = v.team_id.trim();
      const created = await api('POST', '/api/teams/create', body);
      result.replaceChildren(section('Team created', h('p', {}, 'This is the team\'s virtual key. It can be revealed again from the team\'s page (each reveal is recorded).'),
        keyBox(created.virtual_key), h('p', {}, link(`#/teams/${enc(created.team_id)}`, `Open ${created.team_alias}`))));
      window.scrollTo(0, 0);
    }));
}

function keyBox(key) {
  const input = h('input', { type: 'text', readonly: true, value: key, class: 'key', 'aria-label': 'virtual key' });
  const copy = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    try { await navigator.clipboard.writeText(key); say('Key copied.'); } catch (e) { input.select(); say('Select the key and copy it.'); }
  } }, 'Copy');
  return h('div', { class: 'keybox' }, input, copy);
}

async function teamPage(id) {
  const [team, usage, daily, history, groups] = await Promise.all([
    api('GET', `/api/teams/${enc(id)}`),
    api('GET', `/api/teams/${enc(id)}/usage`),
    api('GET', `/api/usage/daily${query({ team_id: id })}`),
    api('GET', `/api/teams/${enc(id)}/history?limit=50`),
    api('GET', '/api/model-groups?limit=200'),
  ]);
  const deleted = team.status === 'deleted';
  const sync = team.litellm_sync || {};
  const keyArea = h('div', {}, h('p', { class: 'muted' }, `Fingerprint ${team.key_fingerprint}; revealed ${team.keys_revealed} time(s).`));
  const unassigned = groups.model_groups.filter((g) => !g.deleted_at && !team.model_groups.includes(g.group_name)).map((g) => g.group_name);
  const post = (path, body, message) => async () => {
    await api('POST', `/api/teams/${enc(id)}/${path}`, body);
    say(message);
    route();
  };
  setView(
    h('p', { class: 'crumbs' }, link('#/teams', 'Teams'), ' / ', team.team_alias),
    h('h1', {}, team.team_alias, ' ', badge(team.status)),
    h('dl', { class: 'facts' },
      fact('Team id', h('code', {}, team.team_id)),
      fact('Organization', link(`#/organizations/${enc(team.organization_id)}`, team.organization_id)),
      fact('Credits', exactMoney(team.credits)), fact('Spent', exactMoney(team.spend)),
      fact('Remaining', exactMoney(team.remaining_budget)), fact('Budget mode', team.budget_mode),
      fact('Rate limits', `${team.rpm_limit ?? '∞'} req/min · ${team.tpm_limit ?? '∞'} tokens/min`),
      fact('Markup', `${team.markup_percent} %`),
      fact('Model groups', team.model_groups.join(', ') || '—'),
      fact('Models', team.allowed_models.join(', ') || '—'),
      fact('LiteLLM sync', [badge(sync.status || 'unknown'), sync.last_error ? ` ${sync.last_error}` : '']),
      fact('Requests', usage.request_count)),
    deleted ? h('p', { class: 'notice info' }, 'This team is deleted; its history and usage stay for the record.') : [
      section('Virtual key', keyArea, can('reveal_key') ? actionButton('Reveal key', 'secondary', async () => {
        const revealed = await api('POST', `/api/teams/${enc(id)}/virtual-key`);
        keyArea.replaceChildren(keyBox(revealed.virtual_key), h('p', { class: 'muted' }, 'This reveal is recorded in the audit trail.'));
      }) : null),
      !can('billing') ? null : section('Add credits', form([field('Amount (USD)', 'amount', { required: true, inputmode: 'decimal', placeholder: '100.00' }), field('Reason (optional)', 'reason')],
        'Add credits', async (v) => {
          const body = { amount: decimal(v.amount) };
          if (v.reason.trim()) body.reason = v.reason.trim();
          await post('credits/add', body, `Added ${money(v.amount)} of credits.`)();
        }, { inline: true })),
      section('Model groups',
        team.model_groups.length ? h('ul', { class: 'plain' }, team.model_groups.map((g) => h('li', {}, g, ' ',
          can('manage') ? actionButton('Unassign', 'secondary small', post('model-groups/unassign', { group_name: g }, `Group ${g} unassigned.`)) : null))) : h('p', { class: 'muted' }, 'No groups: the team can call no model.'),
        unassigned.length && can('manage') ? form([field('Group', 'group_name', { options: unassigned.map((g) => [g, g]) })], 'Assign group',
          async (v) => post('model-groups/assign', { group_name: v.group_name }, `Group ${v.group_name} assigned.`)(), { inline: true }) : null),
      !can('billing') && !can('manage') ? null : section('Budget and limits',
        !can('billing') ? null : form([field('Budget mode', 'budget_mode', { value: team.budget_mode, options: [['hard', 'Hard'], ['soft', 'Soft']] })], 'Set mode',
          async (v) => post('budget-mode', { budget_mode: v.budget_mode }, 'Budget mode set.')(), { inline: true }),
        !can('manage') ? null : form([field('Requests per minute', 'rpm_limit', { value: team.rpm_limit ?? '', inputmode: 'numeric' }),
          field('Tokens per minute', 'tpm_limit', { value: team.tpm_limit ?? '', inputmode: 'numeric' })], 'Set limits',
          async (v) => post('rate-limits', { rpm_limit: optionalInt(v.rpm_limit), tpm_limit: optionalInt(v.tpm_limit) }, 'Rate limits set.')(), { inline: true }),
        !can('billing') ? null : form([field('Markup %', 'markup_percent', { value: team.markup_percent, inputmode: 'decimal' })], 'Set markup',
          async (v) => post('markup', { markup_percent: decimal(v.markup_percent) }, 'Markup set.')(), { inline: true })),
      !can('suspend') && !can('rotate_key') && !can('manage') ? null : section('Status and key',
        !can('suspend') ? null : team.status === 'suspended'
          ? actionButton('Resume', 'secondary', post('resume', {}, 'Team resumed.'))
          : actionButton('Suspend', 'warn', async () => {
              if (!await confirmAction(`Suspend ${team.team_alias}? Its key stops working at once.`, 'Suspend')) return;
              await post('suspend', {}, 'Team suspended.')();
            }),
        !can('rotate_key') ? null : actionButton('Rotate key', 'warn', async () => {
          if (!await confirmAction(`Rotate the key of ${team.team_alias}? The current key stops working at once.`, 'Rotate')) return;
          const rotated = await api('POST', `/api/teams/${enc(id)}/rotate-key`, {});
          say('Key rotated.');
          await route();
          keyArea.replaceChildren(keyBox(rotated.virtual_key));
        }),
        !can('manage') ? null : actionButton('Delete team', 'danger', async () => {
          if (!await confirmAction(`Delete ${team.team_alias}? Its key stops working and this cannot be undone.`, 'Delete')) return;
          await post('delete', {}, 'Team deleted.')();
        })),
    ],
    section('Spend, last 30 days', barChart(`Spend per day of ${team.team_alias}`, daily)),
    section('Usage by model (all time)', table(['Model', 'Requests', 'Tokens', 'Spend', 'Provider cost'],
      Object.entries(usage.models_used).map(([m, u]) => [m, u.requests, u.tokens ?? '—', exactMoney(u.spend ?? u.cost), exactMoney(u.provider_cost)]), 'No usage yet.')),
    section('Timeline', eventsTable(history.events)));
}

function summary(payload) {
  if (!payload || typeof payload !== 'object') return String(payload ?? '');
  return Object.entries(payload)
    .filter(([k]) => !['team_id', 'organization_id'].includes(k))
    .map(([k, v]) => `${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : v}`)
    .join(' · ');
}

function eventsTable(events) {
  return table(['#', 'When', 'Event', 'Stream', 'Actor', 'Details'], events.map((e) => [
    e.position, when(e.recorded_at), e.event_type, `${e.aggregate_type} ${e.aggregate_id}`,
    e.actor_name ? h('span', { title: e.actor }, e.actor_name) : (e.actor || '—'),
    h('span', { class: 'details' }, summary(e.payload))]), 'No events match.');
}

async function usagePage(params) {
  const filters = {
    from: params.get('from') || '', to: params.get('to') || '',
    organization_id: params.get('organization_id') || '', team_id: params.get('team_id') || '',
  };
  const [orgs, daily, teams] = await Promise.all([
    api('GET', '/api/organizations?limit=200'),
    api('GET', `/api/usage/daily${query(filters)}`),
    api('GET', `/api/usage/teams${query({ from: filters.from, to: filters.to, organization_id: filters.organization_id, limit: 100 })}`),
  ]);
  const filterForm = h('form', { class: 'form inline filters' },
    field('From', 'from', { type: 'date', value: filters.from }),
    field('To (inclusive)', 'to', { type: 'date', value: filters.to }),
    field('Organization', 'organization_id', { value: filters.organization_id,
      options: [['', 'All'], ...orgs.organizations.map((o) => [o.organization_id, o.name])] }),
    field('Team id', 'team_id', { value: filters.team_id }),
    h('button', { type: 'submit' }, 'Show'));
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/usage${query(Object.fromEntries(new FormData(filterForm).entries()))}`;
  });
  const csv = `/api/usage/records.csv${query(filters)}`;
  const scope = filters.team_id ? `team ${filters.team_id}` : filters.organization_id ? 'the organization' : 'all teams';
  setView(
    h('h1', {}, 'Usage'),
    filterForm,
    section('Spend per day', barChart(`Spend per day by model, ${scope}`, daily)),
    section('By team', h('p', {}, h('a', { href: csv, download: 'usage.csv' }, 'Export the usage records as CSV')),
      table(['Team', 'Status', 'Requests', 'Tokens', 'Spend', 'Provider cost'], (teams.teams || []).map((t) => [
        link(`#/teams/${enc(t.team_id)}`, t.team_alias), badge(t.status), t.request_count, t.total_tokens ?? '—',
        exactMoney(t.total_spend ?? t.spend), exactMoney(t.provider_cost)]), 'No usage in this period.')));
}

async function auditPage(params) {
  const keys = ['organization_id', 'team_id', 'aggregate_type', 'event_type', 'actor', 'from', 'to'];
  const filters = Object.fromEntries(keys.map((k) => [k, params.get(k) || '']));
  filters.include_usage = params.get('include_usage') === 'true';
  const filterForm = h('form', { class: 'form inline filters' },
    field('Organization id', 'organization_id', { value: filters.organization_id }),
    field('Team id', 'team_id', { value: filters.team_id }),
    field('Stream type', 'aggregate_type', { value: filters.aggregate_type,
      options: [['', 'Any'], ...['Organization', 'ModelGroup', 'Team', 'Job', 'Usage', 'BudgetAlert'].map((t) => [t, t])] }),
    field('Event type', 'event_type', { value: filters.event_type, placeholder: 'e.g. CreditsAdded' }),
    field('Actor', 'actor', { value: filters.actor }),
    field('From', 'from', { type: 'date', value: filters.from }),
    field('To', 'to', { type: 'date', value: filters.to }),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'include_usage', value: 'true', checked: filters.include_usage }), ' include usage'),
    h('button', { type: 'submit' }, 'Filter'));
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/audit${query(Object.fromEntries(new FormData(filterForm).entries()))}`;
  });
  const rows = h('div', {});
  const more = h('div', {});
  setView(h('h1', {}, 'Audit trail'), filterForm, section('Events, oldest first', rows, more));
  const events = [];
  const load = async (cursor) => {
    const page = await api('GET', `/api/audit/events${query({ ...filters, include_usage: filters.include_usage ? 'true' : 'false', limit: 100, cursor })}`);
    events.push(...page.events);
    rows.replaceChildren(eventsTable(events));
    more.replaceChildren(page.next_cursor ? actionButton('Load more', 'secondary', () => load(page.next_cursor)) : h('p', { class: 'muted' }, `${events.length} event(s).`));
  };
  await load(undefined);
}

// ---------------------------------------------------------------- accounts (owners)

const ROLES = [['viewer', 'Viewer'], ['support', 'Support'], ['billing', 'Billing'], ['admin', 'Admin'], ['owner', 'Owner']];

async function accountsPage() {
  const data = await api('GET', '/api/accounts?limit=200');
  setView(
    h('h1', {}, 'Accounts'),
    section('New account', form([
      field('Email', 'email', { required: true, type: 'email' }),
      field('Name', 'display_name', { required: true }),
      field('Role', 'role', { value: 'viewer', options: ROLES }),
      field('Password (optional, 12 characters or more)', 'password', { type: 'password' }),
    ], 'Create account', async (v) => {
      const created = await api('POST', '/api/accounts/create', { email: v.email.trim(), display_name: v.display_name, role: v.role });
      if (v.password) await api('POST', `/api/accounts/${enc(created.account_id)}/password`, { password: v.password });
      say('Account created.');
      location.hash = `#/accounts/${enc(created.account_id)}`;
    })),
    section('All accounts', table(['Name', 'Email', 'Role', 'Status', 'Created'], data.accounts.map((a) => [
      link(`#/accounts/${enc(a.account_id)}`, a.display_name), a.email, a.role,
      badge(a.disabled ? 'disabled' : 'active'), when(a.created_at)]), 'No accounts yet: the master key is the only way in.')));
}

async function accountPage(id) {
  const [account, keys] = await Promise.all([api('GET', `/api/accounts/${enc(id)}`), api('GET', `/api/accounts/${enc(id)}/api-keys`)]);
  const base = `/api/accounts/${enc(id)}`;
  const post = (path, body, message) => async () => { await api('POST', `${base}/${path}`, body); say(message); route(); };
  const issued = h('div', {});
  setView(
    h('p', { class: 'crumbs' }, link('#/accounts', 'Accounts'), ' / ', account.display_name),
    h('h1', {}, account.display_name, ' ', badge(account.disabled ? 'disabled' : 'active')),
    h('dl', { class: 'facts' }, fact('Email', account.email), fact('Role', account.role),
      fact('Account id', h('code', {}, account.account_id)), fact('Created', when(account.created_at))),
    section('Role', form([field('Role', 'role', { value: account.role, options: ROLES })], 'Set role',
      async (v) => post('role', { role: v.role }, 'Role set.')(), { inline: true })),
    section('Password', form([field('New password (12 characters or more)', 'password', { type: 'password', required: true })], 'Set password',
      async (v) => post('password', { password: v.password }, 'Password set.')(), { inline: true })),
    section('Access', account.disabled
      ? actionButton('Enable', 'secondary', post('enable', {}, 'Account enabled.'))
      : actionButton('Disable', 'danger', async () => {
          if (!await confirmAction(`Disable ${account.display_name}? Their sessions and keys stop working at once.`, 'Disable')) return;
          await post('disable', {}, 'Account disabled.')();
        })),
    section('API keys',
      table(['Name', 'Key id', 'Role', 'Expires', 'Last used', 'Status', ''], keys.api_keys.map((k) => [
        k.name, h('code', {}, k.key_id), k.role, k.expires_at ? when(k.expires_at) : 'never', k.last_used_at ? when(k.last_used_at) : 'never',
        badge(k.revoked_at ? 'revoked' : 'active'),
        k.revoked_at ? '' : actionButton('Revoke', 'warn small', post(`api-keys/${enc(k.key_id)}/revoke`, {}, `Key ${k.name} revoked.`))]), 'No keys yet.'),
      issued,
      form([field('Name', 'name', { required: true, placeholder: 'e.g. billing export' }),
        field('Role', 'role', { value: account.role, options: ROLES }),
        field('Expires (optional, e.g. 2027-01-01T00:00:00Z)', 'expires_at')], 'Issue key', async (v) => {
        const body = { name: v.name, role: v.role };
        if (v.expires_at.trim()) body.expires_at = v.expires_at.trim();
        const key = await api('POST', `${base}/api-keys`, body);
        await route();
        document.querySelector('#view').prepend(h('div', { class: 'card' }, h('h2', {}, 'New key (shown once)'), keyBox(key.api_key),
          h('p', { class: 'muted' }, 'Send it as X-Admin-Key. Only a digest is kept: copy it now.')));
      }, { inline: true })));
}

// ---------------------------------------------------------------- router

const ROUTES = [
  [/^\/?$/, () => dashboardPage()],
  [/^\/organizations$/, () => organizationsPage()],
  [/^\/organizations\/([^/]+)$/, (m) => organizationPage(decodeURIComponent(m[1]))],
  [/^\/model-groups$/, () => modelGroupsPage()],
  [/^\/model-groups\/([^/]+)$/, (m) => modelGroupPage(decodeURIComponent(m[1]))],
  [/^\/teams$/, (m, p) => teamsPage(p)],
  [/^\/teams\/new$/, (m, p) => newTeamPage(p)],
  [/^\/teams\/([^/]+)$/, (m) => teamPage(decodeURIComponent(m[1]))],
  [/^\/usage$/, (m, p) => usagePage(p)],
  [/^\/audit$/, (m, p) => auditPage(p)],
  [/^\/accounts$/, () => accountsPage()],
  [/^\/accounts\/([^/]+)$/, (m) => accountPage(decodeURIComponent(m[1]))],
];

async function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, search] = hash.split('?');
  const params = new URLSearchParams(search || '');
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href').slice(1);
    a.classList.toggle('active', target === '/' ? path === '/' : path.startsWith(target));
  }
  for (const [pattern, page] of ROUTES) {
    const m = path.match(pattern);
    if (!m) continue;
    try {
      await page(m, params);
    } catch (error) {
      setView(h('h1', {}, 'Something went wrong'), errorBox(error),
        h('p', {}, h('button', { type: 'button', onclick: () => route() }, 'Retry'), ' ', link('#/', 'Back to the dashboard')));
    }
    return;
  }
  setView(h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', link('#/', 'Back to the dashboard')));
}

// Who is logged in and what their role allows: actions it does not allow are not shown (the
// server refuses them anyway).
let ME = { role: 'owner', may: {} };
const can = (ability) => ME.may[ability] === true;

async function start() {
  try {
    ME = await api('GET', '/api/me');
    const who = ME.account ? `${ME.account.display_name} (${ME.account.email})` : 'master key';
    document.getElementById('whoami').textContent = `${who} · ${ME.role}`;
    document.getElementById('nav-accounts').hidden = !can('accounts');
    if (ME.organizations) {
      // The dashboard, usage and audit pages span every organization; theirs are on each
      // organization's and team's page.
      for (const href of ['#/', '#/usage', '#/audit']) {
        const a = document.querySelector(`#nav a[href="${href}"]`);
        if (a) a.hidden = true;
      }
      document.getElementById('whoami').textContent += ` · ${ME.organizations.join(', ')}`;
    }
  } catch (error) {
    // The page still works; actions are then shown and the server decides.
    ME = { role: 'unknown', may: { manage: true, billing: true, suspend: true, rotate_key: true, reveal_key: true } };
  }
  window.addEventListener('hashchange', route);
  route();
}
start();
