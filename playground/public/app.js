// The playground page: plain JavaScript, no build step. Everything the server says is put on the
// page with textContent, never as HTML, so a table name or an error message cannot inject markup.

// Pretty-printed by hand: one field per line, the short array kept on one line.
const SAMPLE_TRIGGER = '{\n  "name": "Ada",\n  "email": "ada@example.com",\n  "ids": [1, 2]\n}';
const PREVIEW_DELAY_MS = 300;

const $ = (id) => document.getElementById(id);

const state = {
  actions: [],
  action: undefined,
  /** GET /api/connection: the server's saved connection, without its password. */
  saved: { configured: false, hasPassword: false },
  /** True once the user edits the connection form: requests then carry what they typed. */
  connectionEdited: false,
  tables: [],
  /** Field readers of the rendered action form: name → () => value | undefined. */
  readers: new Map(),
  /** Called when the chosen table changes, so column pickers can reload. */
  onTableChange: [],
  previewSeq: 0,
  previewTimer: undefined,
};

// ---------- small DOM helpers ----------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'testid') node.dataset.testid = value;
    else if (key === 'className') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) if (child !== undefined && child !== null) node.append(child);
  return node;
}

function humanize(name) {
  const words = name.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1).replace(/\bms\b/, '(ms)');
}

/** A table reference as Insert Row reads it: "schema.name", each part quoted only when needed. */
function qualifiedName(table) {
  const part = (name) => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : '"' + name.replace(/"/g, '""') + '"');
  return `${part(table.schema)}.${part(table.name)}`;
}

// ---------- API ----------

class ApiError extends Error {
  constructor(info) {
    super(info.message);
    this.info = info;
  }
}

async function api(path, body) {
  // The access token rides in the cookie the server set when the page was opened from the URL
  // `pg-actions serve` printed (…/?token=…); without it every call is a 401 saying so.
  const init = { credentials: 'same-origin', ...(body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }) };
  let response;
  try {
    response = await fetch('/api/' + path, init);
  } catch {
    throw new ApiError({ code: 'PLAYGROUND_UNREACHABLE', title: 'Playground not reachable', message: 'The playground server did not answer.', fixes: ['Check that the pg-actions playground is still running in its terminal.'] });
  }
  const json = await response.json().catch(() => ({}));
  if (!response.ok || json.error) {
    throw new ApiError(json.error ?? { code: 'HTTP_' + response.status, title: 'Unexpected response', message: `HTTP ${response.status}`, fixes: [] });
  }
  return json;
}

// ---------- error rendering (one look for every error) ----------

function errorBox(info, testid) {
  const box = el('div', { className: 'error-box', testid, role: 'alert' },
    el('div', { className: 'error-head' },
      el('h3', { testid: `${testid}-title`, text: info.title ?? 'Error' }),
      info.code ? el('span', { className: 'badge badge-error', testid: `${testid}-code`, text: info.code }) : undefined),
    el('p', { className: 'error-message', testid: `${testid}-message`, text: info.message ?? '' }));
  const facts = [];
  const place = info.location && `line ${info.location.line}, column ${info.location.column}`;
  if (place && !String(info.message).includes(place)) facts.push(place);
  if (info.sqlstate) facts.push(`SQLSTATE ${info.sqlstate}`);
  if (info.constraint) facts.push(`constraint ${info.constraint}`);
  if (facts.length) box.append(el('p', { className: 'facts', text: facts.join(' · ') }));
  if (info.detail) box.append(el('p', { className: 'detail', text: info.detail }));
  if (info.hint) box.append(el('p', { className: 'detail', text: 'Hint: ' + info.hint }));
  if (Array.isArray(info.problems) && info.problems.length > 1) {
    box.append(el('ul', { className: 'problems' }, info.problems.map((p) => el('li', { text: p }))));
  }
  if (Array.isArray(info.fixes) && info.fixes.length) {
    box.append(el('h4', { text: 'How to fix it' }), el('ul', { className: 'fixes', testid: `${testid}-fixes` }, info.fixes.map((f) => el('li', { text: f }))));
  }
  return box;
}

function infoOf(error) {
  return error instanceof ApiError ? error.info : { code: 'PAGE_ERROR', title: 'Unexpected error', message: String(error?.message ?? error), fixes: [] };
}

// ---------- connection ----------

const connectionForm = () => $('connection-form');

function fillConnectionForm(saved) {
  const form = connectionForm();
  for (const name of ['host', 'port', 'database', 'user', 'connectionString', 'sslCa', 'sslCert']) form.elements[name].value = saved[name] ?? '';
  form.elements.sslMode.value = saved.sslMode ?? 'prefer';
  form.elements.pooler.value = saved.pooler ?? 'none';
  fillSshTunnel(form.elements, saved.sshTunnel);
  // Secrets stay on the server: the page is only told that they exist.
  form.elements.password.value = '';
  form.elements.password.placeholder = saved.hasPassword ? 'saved on server' : '';
  form.elements.sslKey.value = '';
  form.elements.sslKey.placeholder = saved.hasSslKey ? 'saved on server' : '-----BEGIN PRIVATE KEY-----';
  if (saved.connectionString) $('connection-string').open = true;
  if (saved.sslCa || saved.sslCert) $('tls-files').open = true;
  state.connectionEdited = false;
  describeConnectionSource();
}

function describeConnectionSource() {
  const note = $('connection-note');
  const reset = $('reset-connection');
  if (state.saved.configured && !state.connectionEdited) {
    note.textContent = 'Using the connection the playground was started with. Its password stays on the server.';
    reset.hidden = true;
  } else if (state.saved.configured) {
    note.textContent = state.saved.hasPassword
      ? 'Using the fields above. Leave the password empty to reuse the saved one (same host, port, user and database, SSL at least as strict, same SSH tunnel).'
      : 'Using the fields above.';
    reset.hidden = false;
  } else {
    note.textContent = 'Fill in the connection, then test it.';
    reset.hidden = true;
  }
}

/** The SSH fields; secrets stay on the server (the page is only told that they exist). */
function fillSshTunnel(fields, ssh = {}) {
  fields.sshHost.value = ssh.host ?? '';
  fields.sshPort.value = ssh.port ?? '';
  fields.sshUser.value = ssh.user ?? '';
  fields.sshHostKeyFingerprint.value = ssh.hostKeyFingerprint ?? '';
  for (const name of ['sshPassword', 'sshPrivateKey', 'sshPassphrase']) fields[name].value = '';
  fields.sshPassword.placeholder = ssh.hasPassword ? 'saved on server' : '';
  fields.sshPrivateKey.placeholder = ssh.hasPrivateKey ? 'saved on server' : '-----BEGIN OPENSSH PRIVATE KEY-----';
  fields.sshPassphrase.placeholder = ssh.hasPrivateKey ? 'saved on server' : '';
  $('ssh-tunnel').open = Boolean(ssh.host);
}

/** sshTunnel from the form, or undefined when no SSH host is given. */
function sshTunnelPayload(fields) {
  const host = fields.sshHost.value.trim();
  if (host === '') return undefined;
  const tunnel = { host };
  if (fields.sshPort.value.trim() !== '') tunnel.port = Number(fields.sshPort.value);
  for (const [key, name] of [['user', 'sshUser'], ['privateKey', 'sshPrivateKey'], ['hostKeyFingerprint', 'sshHostKeyFingerprint']]) {
    const value = fields[name].value.trim();
    if (value !== '') tunnel[key] = value;
  }
  // Secrets as typed: spaces may be part of them.
  for (const [key, name] of [['password', 'sshPassword'], ['passphrase', 'sshPassphrase']]) {
    if (fields[name].value !== '') tunnel[key] = fields[name].value;
  }
  return tunnel;
}

/** "default" while the form shows the saved connection; otherwise what the user typed. */
function connectionPayload() {
  if (state.saved.configured && !state.connectionEdited) return 'default';
  const form = connectionForm().elements;
  const connection = {};
  for (const name of ['connectionString', 'host', 'database', 'user', 'password', 'sslCa', 'sslCert', 'sslKey']) {
    const value = form[name].value;
    if (value.trim() !== '') connection[name] = name === 'password' ? value : value.trim();
  }
  if (form.port.value.trim() !== '') connection.port = Number(form.port.value);
  connection.sslMode = form.sslMode.value;
  connection.pooler = form.pooler.value;
  const sshTunnel = sshTunnelPayload(form);
  if (sshTunnel) connection.sshTunnel = sshTunnel;
  return connection;
}

function renderDiagnosis(result) {
  const ssl = result.ssl?.enabled ? `on (${[result.ssl.protocol, result.ssl.cipher].filter(Boolean).join(', ')})` : 'off';
  const rows = [
    ['Server', `PostgreSQL ${result.serverVersion}`, 'diagnosis-version'],
    ['TLS', ssl, 'diagnosis-tls'],
    ['Signed in as', `${result.user} on ${result.database}`, 'diagnosis-user'],
    ['Round trip', `${result.latencyMs} ms`, 'diagnosis-latency'],
  ];
  if (result.sshTunnel) {
    const { host, port, hostKeyFingerprint, hostKeyVerified } = result.sshTunnel;
    rows.push(['SSH tunnel', `${host}:${port}, host key ${hostKeyFingerprint ?? 'unknown'} (${hostKeyVerified ? 'verified' : 'not verified'})`, 'diagnosis-ssh']);
  }
  if (result.pooler) rows.push(['Pooler', 'a connection pooler answers, not the server itself', 'diagnosis-pooler']);
  const box = el('div', { className: 'ok-box', testid: 'connection-ok' },
    el('div', { className: 'ok-head' }, el('span', { className: 'badge badge-ok', text: 'Connected' })),
    el('dl', { className: 'facts-list' }, rows.flatMap(([term, value, testid]) => [el('dt', { text: term }), el('dd', { testid, text: value })])));
  if (result.warnings?.length) {
    box.append(el('h4', { text: 'Warnings' }), el('ul', { className: 'warnings', testid: 'diagnosis-warnings' }, result.warnings.map((w) => el('li', { text: w }))));
  }
  return box;
}

async function testConnection() {
  const target = $('connection-result');
  const button = $('test-connection');
  button.disabled = true;
  target.replaceChildren(el('p', { className: 'hint', text: 'Connecting…' }));
  try {
    const result = await api('test-connection', { connection: connectionPayload() });
    target.replaceChildren(renderDiagnosis(result));
    loadTables();
  } catch (error) {
    target.replaceChildren(errorBox(infoOf(error), 'connection-error'));
  } finally {
    button.disabled = false;
  }
}

// ---------- tables and columns (pickers) ----------

async function loadTables() {
  const selects = document.querySelectorAll('select[data-widget="table"]');
  if (selects.length === 0) return;
  try {
    state.tables = (await api('tables', { connection: connectionPayload() })).tables;
    for (const select of selects) fillTableSelect(select);
    setPickerError(undefined);
  } catch (error) {
    state.tables = [];
    for (const select of selects) fillTableSelect(select);
    setPickerError(infoOf(error));
  }
}

function setPickerError(info) {
  const slot = document.querySelector('[data-picker-error]');
  if (slot) slot.replaceChildren(info ? el('p', { className: 'field-error', text: `Could not list tables: ${info.title}. ${info.message}` }) : '');
}

function fillTableSelect(select) {
  const current = select.value;
  const options = [el('option', { value: '', text: state.tables.length ? '— choose a table —' : '— no tables (test the connection) —' })];
  for (const table of state.tables) {
    const label = (table.schema === 'public' ? table.name : `${table.schema}.${table.name}`) +
      (table.kind === 'table' ? '' : ` (${table.kind})`) +
      (table.estimatedRows === null ? '' : ` · ~${table.estimatedRows} rows`);
    options.push(el('option', { value: qualifiedName(table), text: label }));
  }
  select.replaceChildren(...options);
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

// ---------- the action form, rendered from the input schema ----------

function orderedProperties(schema) {
  const entries = Object.entries(schema.properties ?? {});
  return entries.sort(([, a], [, b]) => (a['x-order'] ?? 0) - (b['x-order'] ?? 0));
}

function renderActionForm(action) {
  const container = $('action-form');
  state.readers = new Map();
  state.onTableChange = [];
  $('action-description').textContent = action.description;
  const required = new Set(action.input.required ?? []);
  const main = [];
  const advanced = [];
  for (const [name, schema] of orderedProperties(action.input)) {
    const field = renderField(name, schema, required.has(name), action.example?.[name]);
    (required.has(name) || schema['x-widget'] || schema.type === 'array' ? main : advanced).push(field);
  }
  container.replaceChildren(...main);
  if (advanced.length) {
    container.append(el('details', { className: 'advanced' }, el('summary', { text: 'Advanced' }), el('div', { className: 'grid grid-2' }, advanced)));
  }
  loadTables();
}

function fieldShell(name, schema, isRequired, control) {
  return el('div', { className: 'field', testid: `field-${name}` },
    el('div', { className: 'field-label' },
      el('span', { className: 'field-name', text: schema.title ?? humanize(name) }),
      isRequired ? el('span', { className: 'required', text: 'required' }) : undefined),
    control,
    schema.description ? el('p', { className: 'hint', text: schema.description }) : undefined);
}

function renderField(name, schema, isRequired, example) {
  const widget = schema['x-widget'];
  if (widget === 'sql') return sqlField(name, schema, isRequired, example);
  if (widget === 'table') return tableField(name, schema, isRequired);
  if (widget === 'columns') return columnsField(name, schema, isRequired);
  if (schema.type === 'array') return listField(name, schema, isRequired, example);
  if (schema.type === 'integer' || schema.type === 'number') return numberField(name, schema, isRequired);
  if (schema.type === 'boolean') return booleanField(name, schema, isRequired);
  if (schema.type === 'string') return textField(name, schema, isRequired);
  return jsonField(name, schema, isRequired);
}

function sqlField(name, schema, isRequired, example) {
  const textarea = el('textarea', { className: 'code sql-input', testid: `input-${name}`, rows: 6, spellcheck: 'false' });
  textarea.value = typeof example === 'string' ? example : schema['x-example'] ?? '';
  state.readers.set(name, () => textarea.value);
  return fieldShell(name, schema, isRequired, textarea);
}

function tableField(name, schema, isRequired) {
  const select = el('select', { testid: `input-${name}`, 'data-widget': 'table' });
  fillTableSelect(select);
  select.addEventListener('change', () => state.onTableChange.forEach((listener) => listener(select.value)));
  const refresh = el('button', { type: 'button', className: 'secondary', testid: `refresh-${name}`, text: 'Refresh', title: 'Reload the list of tables', onclick: loadTables });
  state.readers.set(name, () => select.value || undefined);
  return fieldShell(name, schema, isRequired, el('div', {}, el('div', { className: 'inline' }, select, refresh), el('div', { 'data-picker-error': '' })));
}

/** Rows of [column dropdown, value]; the dropdown lists the chosen table's columns. */
function columnsField(name, schema, isRequired) {
  let columns = [];
  const rows = el('div', { className: 'rows', testid: `rows-${name}` });
  const summary = el('p', { className: 'hint columns-summary', testid: `columns-summary-${name}` });

  // Short enough for a narrow dropdown: "email: text *" (* = a value is required on insert).
  const columnLabel = (c) => `${c.name}: ${c.type}${c.requiredOnInsert ? ' *' : ''}${c.isIdentity || c.isGenerated ? ' (generated)' : ''}`;
  const fillColumnSelect = (select, chosen) => {
    const options = [el('option', { value: '', text: columns.length ? '— column —' : '— choose a table first —' })];
    for (const column of columns) options.push(el('option', { value: column.name, text: columnLabel(column) }));
    if (chosen && !columns.some((c) => c.name === chosen)) options.push(el('option', { value: chosen, text: `${chosen} (not in this table)` }));
    select.replaceChildren(...options);
    select.value = chosen ?? '';
  };
  const usedColumns = () => [...rows.querySelectorAll('select')].map((s) => s.value).filter(Boolean);
  const addRow = (column, value = '') => {
    const select = el('select', { testid: 'column-name', 'aria-label': 'Column' });
    const input = el('input', { testid: 'column-value', 'aria-label': 'Value', placeholder: 'value or {{trigger.…}}', value });
    const remove = el('button', { type: 'button', className: 'icon', testid: 'column-remove', title: 'Remove this column', 'aria-label': 'Remove column', text: '×' });
    const row = el('div', { className: 'row' }, select, el('span', { className: 'arrow', text: '←' }), input, remove);
    remove.addEventListener('click', () => {
      row.remove();
      schedulePreview();
    });
    fillColumnSelect(select, column);
    rows.append(row);
    schedulePreview();
    return row;
  };
  const add = el('button', { type: 'button', className: 'secondary', testid: `add-${name}`, text: '+ Add column' });
  add.addEventListener('click', () => {
    // Offer the next column that still needs a value, then any unused one.
    const used = new Set(usedColumns());
    const next = columns.find((c) => c.requiredOnInsert && !used.has(c.name)) ?? columns.find((c) => !used.has(c.name) && !c.isIdentity && !c.isGenerated);
    addRow(next?.name).querySelector('input').focus();
  });

  state.onTableChange.push(async (table) => {
    columns = [];
    summary.textContent = '';
    if (table) {
      try {
        columns = (await api('columns', { connection: connectionPayload(), table })).columns;
        const needed = columns.filter((c) => c.requiredOnInsert).map((c) => c.name);
        summary.textContent = needed.length ? `Required on insert (*): ${needed.join(', ')}.` : 'Every column has a default or accepts NULL.';
      } catch (error) {
        summary.textContent = `Could not list columns: ${infoOf(error).message}`;
      }
    }
    for (const select of rows.querySelectorAll('select')) fillColumnSelect(select, select.value || undefined);
    schedulePreview();
  });

  state.readers.set(name, () => {
    const value = {};
    for (const row of rows.children) {
      const column = row.querySelector('select').value;
      if (column) value[column] = row.querySelector('input').value;
    }
    return value;
  });
  return fieldShell(name, schema, isRequired, el('div', { className: 'columns-editor' }, rows, el('div', { className: 'inline' }, add), summary));
}

/** An array such as `parameters`: one input per item, labelled $1, $2… */
function listField(name, schema, isRequired, example) {
  const rows = el('div', { className: 'rows', testid: `rows-${name}` });
  const renumber = () => [...rows.children].forEach((row, i) => (row.querySelector('.param-label').textContent = `$${i + 1}`));
  const addRow = (value = '') => {
    const input = el('input', { testid: 'parameter-value', 'aria-label': 'Parameter value', placeholder: 'value or {{trigger.…}}', value });
    const remove = el('button', { type: 'button', className: 'icon', testid: 'parameter-remove', title: 'Remove this parameter', 'aria-label': 'Remove parameter', text: '×' });
    const row = el('div', { className: 'row' }, el('span', { className: 'param-label' }), input, remove);
    remove.addEventListener('click', () => {
      row.remove();
      renumber();
      schedulePreview();
    });
    rows.append(row);
    renumber();
    return row;
  };
  for (const item of Array.isArray(example) ? example : []) addRow(typeof item === 'string' ? item : JSON.stringify(item));
  const add = el('button', { type: 'button', className: 'secondary', testid: `add-${name}`, text: '+ Add parameter' });
  add.addEventListener('click', () => {
    addRow().querySelector('input').focus();
    schedulePreview();
  });
  state.readers.set(name, () => {
    const values = [...rows.querySelectorAll('input')].map((input) => input.value);
    return values.length ? values : undefined;
  });
  return fieldShell(name, schema, isRequired, el('div', { className: 'columns-editor' }, rows, el('div', { className: 'inline' }, add)));
}

function numberField(name, schema, isRequired) {
  const input = el('input', { type: 'number', testid: `input-${name}`, min: schema.minimum, max: schema.maximum, placeholder: 'default' });
  state.readers.set(name, () => (input.value.trim() === '' ? undefined : Number(input.value)));
  return fieldShell(name, schema, isRequired, input);
}

function booleanField(name, schema, isRequired) {
  const input = el('input', { type: 'checkbox', testid: `input-${name}` });
  state.readers.set(name, () => input.checked);
  return fieldShell(name, schema, isRequired, input);
}

function textField(name, schema, isRequired) {
  const input = el('input', { testid: `input-${name}`, value: schema['x-example'] ?? '' });
  state.readers.set(name, () => (input.value === '' ? undefined : input.value));
  return fieldShell(name, schema, isRequired, input);
}

function jsonField(name, schema, isRequired) {
  const textarea = el('textarea', { className: 'code', testid: `input-${name}`, rows: 3, spellcheck: 'false' });
  state.readers.set(name, () => {
    if (textarea.value.trim() === '') return undefined;
    try {
      return JSON.parse(textarea.value);
    } catch {
      return textarea.value;
    }
  });
  return fieldShell(name, schema, isRequired, textarea);
}

/** The values of a rendered form's fields (name → reader), leaving out the empty ones. */
function readFields(readers) {
  const values = {};
  for (const [name, read] of readers) {
    const value = read();
    if (value !== undefined) values[name] = value;
  }
  return values;
}

function readInput() {
  return readFields(state.readers);
}

/** The trigger data, or undefined (with the problem shown) when it is not valid JSON. */
function readTrigger() {
  const problem = $('trigger-error');
  try {
    const trigger = JSON.parse($('trigger-data').value || '{}');
    problem.hidden = true;
    return { ok: true, trigger };
  } catch (error) {
    problem.textContent = `Trigger data is not valid JSON: ${error.message}`;
    problem.hidden = false;
    return { ok: false };
  }
}

function stepRequest() {
  const parsed = readTrigger();
  if (!parsed.ok) return undefined;
  return { connection: connectionPayload(), input: readInput(), context: { trigger: parsed.trigger } };
}

// ---------- live preview ----------

function schedulePreview() {
  clearTimeout(state.previewTimer);
  state.previewTimer = setTimeout(updatePreview, PREVIEW_DELAY_MS);
}

async function updatePreview() {
  const seq = ++state.previewSeq;
  const request = stepRequest();
  const sql = $('preview-sql');
  const values = $('preview-values');
  const problem = $('preview-error');
  if (!request || !state.action) return;
  try {
    const result = await api('preview', { action: state.action.key, ...request });
    if (seq !== state.previewSeq) return; // a newer preview is on its way
    sql.textContent = result.text;
    values.replaceChildren(...result.values.map((value, i) =>
      el('tr', { testid: 'preview-value' },
        el('th', { text: `$${i + 1}` }),
        el('td', { className: 'value', text: JSON.stringify(value) }),
        el('td', { className: 'type', text: Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value }))));
    if (result.values.length === 0) values.replaceChildren(el('tr', {}, el('td', { className: 'hint', text: 'No parameters.' })));
    problem.replaceChildren();
    $('preview').classList.remove('stale');
  } catch (error) {
    if (seq !== state.previewSeq) return;
    $('preview').classList.add('stale');
    const info = infoOf(error);
    problem.replaceChildren(el('div', { className: 'notice', testid: 'preview-problem' },
      el('strong', { text: `${info.title}: ` }), el('span', { text: info.message })));
  }
}

// ---------- run ----------

async function run() {
  const target = $('run-result');
  const status = $('run-status');
  const request = stepRequest();
  if (!request) {
    target.replaceChildren(errorBox({ title: 'Invalid trigger data', message: 'The trigger data is not valid JSON.', fixes: ['Correct the JSON in the Trigger data box.'] }, 'run-error'));
    return;
  }
  const button = $('run');
  button.disabled = true;
  status.textContent = 'Running…';
  const started = performance.now();
  try {
    const { output } = await api(`actions/${encodeURIComponent(state.action.key)}/run`, request);
    status.textContent = `Succeeded in ${Math.round(performance.now() - started)} ms`;
    target.replaceChildren(el('div', { className: 'ok-box' },
      el('div', { className: 'ok-head' }, el('span', { className: 'badge badge-ok', text: 'Output' })),
      el('pre', { className: 'json', testid: 'run-output', text: JSON.stringify(output, null, 2) })));
  } catch (error) {
    status.textContent = `Failed after ${Math.round(performance.now() - started)} ms`;
    target.replaceChildren(errorBox(infoOf(error), 'run-error'));
  } finally {
    button.disabled = false;
  }
}

// ---------- the Trigger panel: activate a trigger, watch its events, use one as trigger data ----------

/** The playground polls and re-reads every second (the triggers' own defaults suit production). */
const PLAYGROUND_INTERVAL_SECONDS = 1;
const MAX_EVENTS_SHOWN = 50;

const triggerState = {
  triggers: [],
  trigger: undefined,
  /** Config field readers: name → () => value | undefined. */
  readers: new Map(),
  /** The active session ({ id, trigger, config }) and its EventSource. */
  session: undefined,
  source: undefined,
};

function selectTrigger(key) {
  triggerState.trigger = triggerState.triggers.find((trigger) => trigger.key === key);
  $('trigger-description').textContent = triggerState.trigger?.description ?? '';
  renderTriggerConfig(triggerState.trigger);
  describeChangeControls();
}

function renderTriggerConfig(trigger) {
  const container = $('trigger-config');
  triggerState.readers = new Map();
  if (!trigger) return container.replaceChildren();
  const required = new Set(trigger.config.required ?? []);
  const main = [];
  const advanced = [];
  let onTable = () => undefined;
  for (const [name, schema] of orderedProperties(trigger.config)) {
    const example = trigger.example?.[name];
    let field;
    if (schema['x-widget'] === 'table' || (name === 'tables' && schema.type === 'array' && !schema.items?.enum)) {
      field = triggerTableField(name, schema, required.has(name), (table) => onTable(table));
    } else if (schema['x-widget'] === 'column') {
      const column = triggerColumnField(name, schema, required.has(name), example);
      onTable = column.load;
      field = column.field;
    } else {
      field = triggerValueField(name, schema, required.has(name), example);
    }
    (required.has(name) || schema.type === 'array' || schema['x-widget'] ? main : advanced).push(field);
  }
  container.replaceChildren(...main);
  if (advanced.length) container.append(el('details', { className: 'advanced' }, el('summary', { text: 'Advanced' }), el('div', { className: 'grid grid-2' }, advanced)));
  loadTables();
}

/** The table (or, for a "tables" list, one table) the trigger watches. */
function triggerTableField(name, schema, isRequired, onChange) {
  const select = el('select', { testid: `trigger-input-${name}`, 'data-widget': 'table' });
  fillTableSelect(select);
  select.addEventListener('change', () => onChange(select.value));
  const asList = schema.type === 'array';
  triggerState.readers.set(name, () => (select.value ? (asList ? [select.value] : select.value) : undefined));
  return triggerShell(name, { ...schema, title: asList ? 'Table' : schema.title }, isRequired, select);
}

/** A column of the chosen table (new-row's ordering column); the example's name is picked when the table has it. */
function triggerColumnField(name, schema, isRequired, example) {
  const select = el('select', { testid: `trigger-input-${name}` }, el('option', { value: '', text: '— choose a table first —' }));
  triggerState.readers.set(name, () => select.value || undefined);
  const load = async (table) => {
    let columns = [];
    if (table) columns = (await api('columns', { connection: connectionPayload(), table }).catch(() => ({ columns: [] }))).columns;
    select.replaceChildren(el('option', { value: '', text: columns.length ? '— column —' : '— choose a table first —' }),
      ...columns.map((c) => el('option', { value: c.name, text: `${c.name}: ${c.type}` })));
    const preferred = columns.find((c) => c.name === example) ?? columns.find((c) => c.inPrimaryKey);
    if (preferred) select.value = preferred.name;
  };
  return { field: triggerShell(name, schema, isRequired, select), load };
}

/** Operations (checkboxes), choices (a dropdown), numbers, text, and lists typed as "a, b". */
function triggerValueField(name, schema, isRequired, example) {
  // A required field starts from the example (a channel name), an optional one from its default.
  const fallback = isRequired ? (example ?? schema.default) : (schema.default ?? example);
  if (schema.type === 'array' && schema.items?.enum) {
    const chosen = new Set(Array.isArray(fallback) ? fallback : schema.items.enum);
    const boxes = schema.items.enum.map((value) => el('input', { type: 'checkbox', value, checked: chosen.has(value), testid: `trigger-input-${name}-${value}` }));
    triggerState.readers.set(name, () => boxes.filter((box) => box.checked).map((box) => box.value));
    return triggerShell(name, schema, isRequired, el('div', { className: 'checkboxes' }, schema.items.enum.map((value, i) => el('label', { className: 'checkbox' }, boxes[i], value))));
  }
  if (schema.enum) {
    const select = el('select', { testid: `trigger-input-${name}` }, schema.enum.map((value) => el('option', { value, text: value })));
    if (fallback !== undefined) select.value = fallback;
    triggerState.readers.set(name, () => select.value);
    return triggerShell(name, schema, isRequired, select);
  }
  if (schema.type === 'number' || schema.type === 'integer') {
    const input = el('input', { type: 'number', testid: `trigger-input-${name}`, min: schema.minimum, max: schema.maximum, step: 'any', placeholder: schema.default === undefined ? '' : String(schema.default) });
    if (name === 'intervalSeconds') input.value = String(PLAYGROUND_INTERVAL_SECONDS);
    triggerState.readers.set(name, () => (input.value.trim() === '' ? undefined : Number(input.value)));
    return triggerShell(name, schema, isRequired, input);
  }
  if (schema.type === 'array') {
    const input = el('input', { testid: `trigger-input-${name}`, placeholder: 'a, b', value: Array.isArray(fallback) ? fallback.join(', ') : '' });
    triggerState.readers.set(name, () => {
      const items = input.value.split(',').map((item) => item.trim()).filter(Boolean);
      return items.length ? items : undefined;
    });
    return triggerShell(name, schema, isRequired, input);
  }
  const input = el('input', { testid: `trigger-input-${name}`, value: isRequired ? (schema['x-example'] ?? '') : '', placeholder: schema.default === undefined ? '' : String(schema.default) });
  triggerState.readers.set(name, () => (input.value === '' ? undefined : input.value));
  return triggerShell(name, schema, isRequired, input);
}

/** As the action form's fields, under test ids of their own (a trigger and an action both have a "table"). */
function triggerShell(name, schema, isRequired, control) {
  const shell = fieldShell(name, schema, isRequired, control);
  shell.dataset.testid = `trigger-field-${name}`;
  return shell;
}

/** "Make a change" fits triggers that watch a table (insert / update / delete a row) and listen (a NOTIFY). */
function describeChangeControls() {
  const config = triggerState.session?.config ?? {};
  const key = triggerState.session?.trigger ?? triggerState.trigger?.key;
  const watchesTable = typeof config.table === 'string' || Array.isArray(config.tables);
  $('trigger-change-op').hidden = !watchesTable;
  $('trigger-change').textContent = key === 'listen' ? 'Send a NOTIFY' : 'Make a change';
  $('trigger-change').disabled = !triggerState.session || (!watchesTable && key !== 'listen');
}

function setTriggerActive(active) {
  $('trigger-picker').disabled = active;
  for (const control of $('trigger-config').querySelectorAll('input, select')) control.disabled = active;
  $('trigger-activate').hidden = active;
  $('trigger-deactivate').hidden = !active;
  if (!active) $('trigger-watch-here').hidden = true;
  $('trigger-change-row').hidden = !active;
  describeChangeControls();
}

function setTriggerStatus(text) {
  $('trigger-status').textContent = text;
}

async function activateTrigger() {
  const button = $('trigger-activate');
  button.disabled = true;
  $('trigger-result').replaceChildren();
  setTriggerStatus('Activating…');
  try {
    const session = await api(`triggers/${encodeURIComponent(triggerState.trigger.key)}/activate`, { connection: connectionPayload(), config: readFields(triggerState.readers) });
    watchSession(session);
  } catch (error) {
    setTriggerStatus('');
    $('trigger-result').replaceChildren(errorBox(infoOf(error), 'trigger-error'));
  } finally {
    button.disabled = false;
  }
}

/** Opens the session's event stream; the server's subscription runs while it is open. */
function watchSession(session) {
  triggerState.source?.close();
  $('trigger-watch-here').hidden = true;
  triggerState.session = session;
  setTriggerActive(true);
  setTriggerStatus('Connecting…');
  const source = new EventSource(`/api/trigger-sessions/${encodeURIComponent(session.id)}/events`);
  triggerState.source = source;
  const table = session.config.table ?? session.config.tables?.join(', ') ?? session.config.channel ?? session.config.schemas?.join(', ');
  source.addEventListener('ready', () => setTriggerStatus(`Active: waiting for ${table ? `changes on ${table}` : 'events'}. Make a change here or in another tab.`));
  source.addEventListener('trigger', (message) => addTriggerEvent(JSON.parse(message.data)));
  source.addEventListener('problem', (message) => {
    const { error } = JSON.parse(message.data);
    setTriggerStatus(`Reconnecting after: ${error.title ?? error.message}`);
  });
  source.addEventListener('replaced', () => {
    source.close();
    triggerState.source = undefined;
    $('trigger-watch-here').hidden = false;
    setTriggerStatus('Watched in another tab or window now: its events go there.');
  });
  source.addEventListener('deactivated', () => {
    source.close();
    triggerState.session = undefined;
    triggerState.source = undefined;
    setTriggerActive(false);
    setTriggerStatus('Deactivated.');
  });
  source.addEventListener('error', () => {
    // A closed stream is retried by the browser; one refused for good (deactivated, playground stopped) is not.
    if (source.readyState === EventSource.CLOSED && triggerState.source === source) setTriggerStatus('Stopped: the event stream is closed (was the playground stopped?).');
  });
  source.addEventListener('failed', (message) => {
    source.close();
    setTriggerStatus('Stopped.');
    $('trigger-result').replaceChildren(errorBox(JSON.parse(message.data).error, 'trigger-error'));
  });
}

async function deactivateTrigger() {
  const session = triggerState.session;
  if (!session) return;
  const button = $('trigger-deactivate');
  button.disabled = true;
  triggerState.source?.close();
  try {
    await api(`trigger-sessions/${encodeURIComponent(session.id)}/deactivate`, {});
    triggerState.session = undefined;
    triggerState.source = undefined;
    setTriggerActive(false);
    setTriggerStatus('Deactivated: nothing of this trigger is left in the database.');
  } catch (error) {
    $('trigger-result').replaceChildren(errorBox(infoOf(error), 'trigger-error'));
  } finally {
    button.disabled = false;
  }
}

async function makeChange() {
  const session = triggerState.session;
  const button = $('trigger-change');
  button.disabled = true;
  try {
    const { change } = await api(`trigger-sessions/${encodeURIComponent(session.id)}/change`, { op: $('trigger-change-op').value });
    const verb = { insert: 'Inserted a row into', update: 'Updated a row of', delete: 'Deleted a row of', notify: 'Sent a NOTIFY on' }[change.op];
    const what = change.op === 'notify' ? change.channel : change.row ? `${change.table}` : `${change.table} (it has no rows)`;
    $('trigger-result').replaceChildren(el('p', { className: 'hint', testid: 'trigger-change-result', text: `${verb} ${what}.` }));
  } catch (error) {
    $('trigger-result').replaceChildren(errorBox(infoOf(error), 'trigger-error'));
  } finally {
    button.disabled = false;
  }
}

/** One line per event, newest first; a click makes it the step's trigger data. */
function addTriggerEvent(event) {
  const list = $('trigger-events');
  $('trigger-events-empty').hidden = true;
  const what = [event.op ?? (event.channel !== undefined ? 'NOTIFY' : 'EVENT'), event.table ?? event.channel ?? ''].join(' ');
  const detail = event.key ? JSON.stringify(event.key) : event.text ?? '';
  const item = el('li', {},
    el('button', { type: 'button', className: 'event-item', testid: 'trigger-event', title: 'Use this event as the trigger data', onclick: () => useEvent(event, item) },
      el('span', { className: 'badge', text: what }),
      el('span', { className: 'event-detail', text: detail }),
      el('span', { className: 'event-time', text: new Date().toLocaleTimeString() })));
  list.prepend(item);
  while (list.children.length > MAX_EVENTS_SHOWN) list.lastChild.remove();
}

function useEvent(event, item) {
  $('trigger-data').value = JSON.stringify(event, null, 2);
  for (const other of $('trigger-events').querySelectorAll('.selected')) other.classList.remove('selected');
  item.classList.add('selected');
  $('trigger-used').textContent = event.new
    ? `Trigger data is this event: use {{trigger.new.${Object.keys(event.new)[0]}}}, {{trigger.op}}… in the action.`
    : 'Trigger data is this event: use {{trigger.…}} in the action.';
  readTrigger();
  schedulePreview();
}

async function startTriggerPanel() {
  const [{ triggers }, { sessions }] = await Promise.all([api('triggers'), api('trigger-sessions')]);
  triggerState.triggers = triggers;
  const picker = $('trigger-picker');
  picker.replaceChildren(...triggers.map((trigger) => el('option', { value: trigger.key, text: trigger.name })));
  picker.addEventListener('change', () => selectTrigger(picker.value));
  $('trigger-activate').addEventListener('click', activateTrigger);
  $('trigger-deactivate').addEventListener('click', deactivateTrigger);
  $('trigger-change').addEventListener('click', makeChange);
  $('trigger-watch-here').addEventListener('click', () => watchSession(triggerState.session));
  // A trigger this playground still has active (the page was reloaded): show it and resume its stream.
  const resumed = sessions[0];
  picker.value = resumed?.trigger ?? triggers[0].key;
  selectTrigger(picker.value);
  if (resumed) watchSession(resumed);
  else setTriggerActive(false);
}

// ---------- start ----------

function selectAction(key) {
  state.action = state.actions.find((action) => action.key === key);
  $('run-result').replaceChildren();
  $('run-status').textContent = '';
  renderActionForm(state.action);
  schedulePreview();
}

async function start() {
  $('trigger-data').value = SAMPLE_TRIGGER;
  const [{ actions }, saved] = await Promise.all([api('actions'), api('connection')]);
  state.actions = actions;
  state.saved = saved;
  fillConnectionForm(saved);

  const picker = $('action');
  picker.replaceChildren(...actions.map((action) => el('option', { value: action.key, text: action.name })));
  picker.addEventListener('change', () => selectAction(picker.value));

  connectionForm().addEventListener('input', () => {
    state.connectionEdited = true;
    describeConnectionSource();
    schedulePreview();
  });
  $('reset-connection').addEventListener('click', () => {
    fillConnectionForm(state.saved);
    $('connection-result').replaceChildren();
    loadTables();
    schedulePreview();
  });
  $('test-connection').addEventListener('click', testConnection);
  $('run').addEventListener('click', run);
  $('action-form').addEventListener('input', schedulePreview);
  $('action-form').addEventListener('change', schedulePreview);
  $('trigger-data').addEventListener('input', schedulePreview);

  selectAction(actions[0].key);
  await startTriggerPanel();
  document.body.dataset.ready = 'true';
}

start().catch((error) => {
  document.querySelector('main').prepend(errorBox(infoOf(error), 'page-error'));
});
