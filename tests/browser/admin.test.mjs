// The admin panel in a real browser: what an operator does, step by step, against a running
// saas-api (BASE_URL, MASTER_KEY) whose LiteLLM is the test double. Run by scripts/e2e-admin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const KEY = process.env.MASTER_KEY;
const SHOTS = process.env.SCREENSHOT_DIR;
const VIEWER_PASSWORD = process.env.VIEWER_PASSWORD || 'a viewer passphrase';
assert.ok(BASE && KEY, 'BASE_URL and MASTER_KEY must be set');
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

const LAUNCH = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // The machine's network is closed: without these Chromium keeps trying to reach Google.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
};

const stamp = Date.now().toString(36);
const ORG_NAME = `Acme <b>${stamp}</b>`; // markup in a name must show as typed
const GROUP = `chat-${stamp}`;
const TEAM = `Research ${stamp}`;

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function login(page, key) {
  await page.goto(`${BASE}/admin`);
  await page.waitForURL(/\/admin\/login/);
  await page.fill('#master_key', key);
  return Promise.all([page.waitForLoadState('load'), page.click('#login-key')]);
}

// Reloads the route until `check` passes (the read models and usage follow the commands).
async function eventually(page, check, what, tries = 40) {
  let last;
  for (let i = 0; i < tries; i++) {
    try { await check(); return; } catch (error) { last = error; }
    await page.waitForTimeout(250);
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
  }
  throw new Error(`${what}: ${last && last.message}`);
}

async function chat(key, model = 'fake-gpt') {
  const response = await fetch(`${BASE}/v1/chat/completions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }], max_tokens: 20 }),
  });
  return response.status;
}

// An admin API call with the master key, from the test itself (not the browser).
async function adminApi(method, path, body) {
  const response = await fetch(`${BASE}${path}`, {
    method, headers: { 'x-admin-key': KEY, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

test('an organization-scoped admin sees only their organization\'s teams', async () => {
  const mine = `org_mine_${stamp}`;
  const theirs = `org_theirs_${stamp}`;
  const group = `scope-${stamp}`;
  await adminApi('POST', '/api/model-groups/create', { group_name: group, models: ['fake-gpt'] });
  let last;
  for (const [org, team] of [[mine, `team_mine_${stamp}`], [theirs, `team_theirs_${stamp}`]]) {
    await adminApi('POST', '/api/organizations/create', { organization_id: org, name: org });
    last = await adminApi('POST', '/api/teams/create', { organization_id: org, team_id: team, model_groups: [group], credits: 0 });
  }
  const email = `scoped-${stamp}@example.com`;
  const account = await adminApi('POST', '/api/accounts/create', { email, display_name: 'Mia Scoped', role: 'admin', organizations: [mine] });
  await adminApi('POST', `/api/accounts/${account.account_id}/password`, { password: VIEWER_PASSWORD });
  await fetch(`${BASE}/api/teams`, { headers: { 'x-admin-key': KEY, 'x-wait-for-position': String(last.position) } });

  const browser = await chromium.launch(LAUNCH);
  try {
    const page = await browser.newPage();
    await page.goto(`${BASE}/admin`);
    await page.waitForURL(/\/admin\/login/);
    await page.fill('#email', email);
    await page.fill('#password', VIEWER_PASSWORD);
    await Promise.all([page.waitForLoadState('load'), page.click('#login-account')]);
    // Home is their teams, not the dashboard over every organization.
    await page.waitForSelector(`a:text("team_mine_${stamp}")`);
    assert.equal(await page.locator(`text="team_theirs_${stamp}"`).count(), 0, 'another organization\'s team is listed');
    assert.equal(await page.locator('#nav a[href="#/"]').isHidden(), true);
    await page.goto(`${BASE}/admin#/organizations`);
    await page.waitForSelector(`a:text("${mine}")`);
    assert.equal(await page.locator(`text="${theirs}"`).count(), 0, 'another organization is listed');
    // Their organization's page has its usage.
    await page.click(`a:text("${mine}")`);
    await page.waitForSelector('h2:text("Spend, last 30 days")');
    // The other organization's team does not exist for them.
    await page.goto(`${BASE}/admin#/teams/team_theirs_${stamp}`);
    await page.waitForSelector('h1:text("Something went wrong")');
    assert.match(await page.textContent('#view'), /team not found/i);
  } finally {
    await browser.close();
    for (const team of [`team_mine_${stamp}`, `team_theirs_${stamp}`]) await adminApi('POST', `/api/teams/${team}/delete`, {});
  }
});

// First: the operator's test below ends with wrong keys that slow this address down.
test('a viewer logs in with a password and cannot add credits', async () => {
  const org = `org_view_${stamp}`;
  const group = `view-${stamp}`;
  const team = `team_view_${stamp}`;
  await adminApi('POST', '/api/organizations/create', { organization_id: org, name: 'Viewers' });
  await adminApi('POST', '/api/model-groups/create', { group_name: group, models: ['fake-gpt'] });
  const created = await adminApi('POST', '/api/teams/create',
    { organization_id: org, team_id: team, model_groups: [group], credits: 0 });
  const email = `viewer-${stamp}@example.com`;
  const account = await adminApi('POST', '/api/accounts/create', { email, display_name: 'Vic Viewer', role: 'viewer' });
  await adminApi('POST', `/api/accounts/${account.account_id}/password`, { password: VIEWER_PASSWORD });
  // The team's read model has it before the page asks.
  await fetch(`${BASE}/api/teams/${team}`, { headers: { 'x-admin-key': KEY, 'x-wait-for-position': String(created.position) } });

  const browser = await chromium.launch(LAUNCH);
  try {
    const page = await browser.newPage();
    await page.goto(`${BASE}/admin`);
    await page.waitForURL(/\/admin\/login/);
    await page.fill('#email', email);
    await page.fill('#password', VIEWER_PASSWORD);
    await Promise.all([page.waitForLoadState('load'), page.click('#login-account')]);
    await page.waitForSelector('#whoami:text("viewer")');
    assert.match(await page.textContent('#whoami'), /Vic Viewer/);
    await page.goto(`${BASE}/admin#/teams/${team}`);
    await page.waitForSelector(`h1:text("${team}")`);
    await page.waitForSelector('h2:text("Timeline")');
    for (const absent of ['Add credits', 'Reveal key', 'Suspend', 'Rotate key', 'Delete team']) {
      assert.equal(await page.locator(`text="${absent}"`).count(), 0, `${absent} is shown to a viewer`);
    }
    await shot(page, 'viewer-team');
    await page.goto(`${BASE}/admin#/organizations`);
    await page.waitForSelector('h2:text("All organizations")');
    assert.equal(await page.locator('text="Create organization"').count(), 0, 'a viewer is offered to create organizations');
    // Who did what is named: the team was created with the master key.
    await page.goto(`${BASE}/admin#/teams/${team}`);
    await page.waitForSelector('#view table span[title^="admin:"]:text("master key")');
    // A forged call from the viewer's own session, CSRF token and all, is refused and changes nothing.
    const forged = await page.evaluate(async (path) => {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ amount: 1000 }) });
      return [response.status, (await response.json()).error.code];
    }, `/api/teams/${team}/credits/add`);
    assert.deepEqual(forged, [403, 'not_permitted']);
    const after = await adminApi('GET', `/api/teams/${team}`);
    assert.equal(after.credits, 0);
  } finally {
    await browser.close();
    // The operator's test below counts the live teams.
    await adminApi('POST', `/api/teams/${team}/delete`, {});
  }
});

test('an operator runs the service from the admin panel', async (t) => {
  const browser = await chromium.launch(LAUNCH);
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  let virtualKey;
  let teamUrl;

  await t.test('a wrong key shows an error and lets no one in', async () => {
    await login(page, 'mk-this-is-not-the-key');
    await assert.doesNotReject(page.waitForSelector('#login-error'));
    assert.match(await page.textContent('#login-error'), /not the master key/);
    assert.equal(await page.locator('#view').count(), 0);
    const api = await page.request.get(`${BASE}/api/dashboard`);
    assert.equal(api.status(), 401);
    await shot(page, 'login-error');
  });

  await t.test('the master key opens a session kept in an HttpOnly, SameSite=Strict cookie', async () => {
    await login(page, KEY);
    await page.waitForSelector('h1:text("Dashboard")');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'saas_admin_session');
    assert.ok(session, 'a session cookie is set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.ok(!session.value.includes(KEY));
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie + document.documentElement.outerHTML);
    assert.ok(!stored.includes(KEY), 'the master key is nowhere in the page or its storage');
  });

  await t.test('a state-changing API call without the CSRF token is refused', async () => {
    const response = await page.request.post(`${BASE}/api/organizations/create`, { data: { name: 'forged' } });
    assert.equal(response.status(), 403);
    assert.equal((await response.json()).error.code, 'csrf_failed');
  });

  await t.test('create an organization (its name is shown as text, not markup)', async () => {
    await page.click('#nav a[href="#/organizations"]');
    await page.waitForSelector('h1:text("Organizations")');
    await page.getByLabel('Name', { exact: true }).fill(ORG_NAME);
    await page.click('button:text("Create organization")');
    await page.waitForSelector(`h1:text("${ORG_NAME}")`);
    assert.equal(await page.locator('#view b').count(), 0, 'no <b> element was made from the name');
  });

  await t.test('a create that the API refuses shows its message in place', async () => {
    await page.click('#nav a[href="#/organizations"]');
    await page.waitForSelector('h1:text("Organizations")');
    await page.click('button:text("Create organization")');
    const error = page.locator('.form-errors .notice.error');
    await error.waitFor();
    assert.match(await error.textContent(), /name/i);
  });

  await t.test("create a model group from LiteLLM's catalog", async () => {
    await page.click('#nav a[href="#/model-groups"]');
    await page.waitForSelector('h1:text("Model groups")');
    await page.getByLabel('Group name').fill(GROUP);
    await page.getByLabel('fake-gpt', { exact: true }).check();
    await page.click('button:text("Create group")');
    await page.waitForSelector(`h1:text("${GROUP}")`);
    assert.equal(await page.getByLabel('fake-gpt', { exact: true }).isChecked(), true);
    assert.equal(await page.getByLabel('fake-gpt-2', { exact: true }).isChecked(), false);
  });

  await t.test('create a team and see its key once', async () => {
    await page.click('#nav a[href="#/teams"]');
    await page.click('a:text("New team")');
    await page.waitForSelector('h1:text("New team")');
    await page.getByLabel('Team name (alias)').fill(TEAM);
    await page.getByLabel(GROUP).check();
    await page.getByLabel('Credits (USD)').fill('10');
    await page.click('button:text("Create team")');
    await page.waitForSelector('h2:text("Team created")');
    virtualKey = await page.inputValue('input.key');
    assert.match(virtualKey, /^sk-/);
    await page.click(`a:text("Open ${TEAM}")`);
    await page.waitForSelector(`h1:text("${TEAM}")`);
    teamUrl = page.url();
  });

  await t.test('add credits, exactly', async () => {
    await page.getByLabel('Amount (USD)').fill('5.50');
    await page.click('button:text("Add credits")');
    await eventually(page, async () => {
      const credits = await page.locator('dt:text("Credits") + dd').textContent();
      assert.equal(credits, '$15.50');
    }, 'credits after adding');
    const title = await page.locator('dt:text("Credits") + dd span').getAttribute('title');
    assert.match(title, /exactly 15\.5/);
  });

  await t.test('bad money is refused with the API\'s message, next to the form', async () => {
    await page.getByLabel('Amount (USD)').fill('12.345.6');
    await page.click('button:text("Add credits")');
    const error = page.locator('.form-errors .notice.error');
    await error.waitFor();
    assert.ok((await error.textContent()).length > 10);
    assert.equal(await page.locator('dt:text("Credits") + dd').textContent(), '$15.50');
  });

  await t.test('reveal the key and find the one given at creation', async () => {
    await page.click('button:text("Reveal key")');
    await page.waitForSelector('input.key');
    assert.equal(await page.inputValue('input.key'), virtualKey);
  });

  await t.test('requests with the key appear as usage with a chart', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await chat(virtualKey), 200);
    await eventually(page, async () => {
      const requests = await page.locator('dt:text("Requests") + dd').textContent();
      assert.equal(requests, '3');
    }, 'usage on the team page');
    const row = page.locator('section:has(h2:text("Usage by model")) tbody tr');
    assert.equal(await row.count(), 1);
    assert.match(await row.first().textContent(), /fake-gpt/);
    assert.ok(await page.locator('section:has(h2:text("Spend, last 30 days")) svg.chart rect').count() >= 1, 'a bar is drawn');
    await shot(page, 'team');
  });

  await t.test('the usage page charts spend and exports the records as CSV', async () => {
    await page.click('#nav a[href="#/usage"]');
    await page.waitForSelector('h1:text("Usage")');
    assert.ok(await page.locator('svg.chart rect').count() >= 1);
    assert.match(await page.locator('section:has(h2:text("By team"))').textContent(), new RegExp(TEAM));
    const href = await page.getAttribute('a:text("Export the usage records as CSV")', 'href');
    const csv = await page.request.get(`${BASE}${href}`);
    assert.equal(csv.status(), 200);
    const lines = (await csv.text()).trim().split('\n');
    assert.equal(lines.length, 4, 'a header and three records');
    await shot(page, 'usage');
  });

  await t.test('the dashboard shows the totals', async () => {
    await page.click('#nav a[href="#/"]');
    await page.waitForSelector('h1:text("Dashboard")');
    assert.equal(await page.locator('.tile:has-text("Credits") .tile-value').textContent(), '$15.50');
    assert.equal(await page.locator('.tile:has-text("Active teams") .tile-value').textContent(), '1');
    assert.match(await page.locator('.tile:has-text("Spend today") .tile-note').textContent(), /^3 requests/);
    await shot(page, 'dashboard');
  });

  await t.test('the audit trail lists the team\'s changes with their actor', async () => {
    await page.click('#nav a[href="#/audit"]');
    await page.waitForSelector('h1:text("Audit trail")');
    await page.getByLabel('Stream type').selectOption('Team');
    await page.click('button:text("Filter")');
    await page.waitForSelector('td:text("CreditsAdded")');
    // The actor is named (the master key here), its raw id in the cell's title. Waited for, not
    // counted once: the filtered table may replace the one first shown while it is read (a
    // count taken in between found none, once in CI).
    await page.waitForSelector('#view table span[title^="admin:"]:text("master key")');
    const text = await page.locator('#view table').textContent();
    assert.match(text, /TeamCreated/);
    assert.match(text, /master key/);
    await shot(page, 'audit');
  });

  await t.test('suspend after confirming; the key stops working', async () => {
    await page.goto(teamUrl);
    await page.waitForSelector(`h1:text("${TEAM}")`);
    await page.click('button:text("Suspend")');
    await page.click('dialog.confirm button:text("Cancel")');
    assert.equal(await page.locator('h1 .badge').textContent(), 'active', 'cancel changes nothing');
    await page.click('button:text("Suspend")');
    await page.click('dialog.confirm button:text("Suspend")');
    await eventually(page, async () => assert.equal(await page.locator('h1 .badge').textContent(), 'suspended'), 'suspended badge');
    assert.equal(await chat(virtualKey), 401);
  });

  await t.test('pages fit a phone screen', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    await phone.addCookies(await context.cookies());
    const small = await phone.newPage();
    for (const route of ['#/', '#/teams', '#/usage', '#/audit', teamUrl.split('#')[1] ? `#${teamUrl.split('#')[1]}` : '#/']) {
      await small.goto(`${BASE}/admin${route}`);
      await small.waitForSelector('#view h1');
      const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${route} is ${overflow}px wider than the phone`);
    }
    await shot(small, 'phone-team');
    await phone.close();
  });

  await t.test('an unknown page and a failing request show a message, never a blank page', async () => {
    await page.goto(`${BASE}/admin#/teams/no-such-team`);
    const error = page.locator('#view .notice.error');
    await error.waitFor();
    assert.match(await error.textContent(), /not found/i);
    await page.goto(`${BASE}/admin#/nowhere`);
    await page.waitForSelector('h1:text("Not found")');
  });

  await t.test('an owner creates an account and issues and revokes its key', async () => {
    await page.click('#nav-accounts');
    await page.waitForSelector('h1:text("Accounts")');
    const form = page.locator('form:has(button:text("Create account"))');
    await form.locator('input[name=email]').fill(`support-${stamp}@example.com`);
    await form.locator('input[name=display_name]').fill('Sam Support');
    await form.locator('select[name=role]').selectOption('support');
    await form.locator('button:text("Create account")').click();
    await page.waitForSelector('h1:text("Sam Support")');
    const keys = page.locator('form:has(button:text("Issue key"))');
    await keys.locator('input[name=name]').fill('ticket bot');
    await keys.locator('button:text("Issue key")').click();
    const key = await (await page.waitForSelector('input.key')).inputValue();
    assert.match(key, /^sa_key_[0-9a-f]{16}\./);
    // The key works as X-Admin-Key with the account's role: it may read, not add credits.
    const read = await fetch(`${BASE}/api/teams`, { headers: { 'x-admin-key': key } });
    assert.equal(read.status, 200);
    await page.click('button:text("Revoke")');
    await page.waitForSelector('.badge.revoked');
    const after = await fetch(`${BASE}/api/teams`, { headers: { 'x-admin-key': key } });
    assert.equal(after.status, 401);
  });

  await t.test('log out ends the session', async () => {
    await page.goto(`${BASE}/admin`);
    await page.click('button:text("Log out")');
    await page.waitForSelector('text=You are logged out.');
    const api = await page.request.get(`${BASE}/api/dashboard`);
    assert.equal(api.status(), 401);
    await page.goto(`${BASE}/admin`);
    await page.waitForURL(/\/admin\/login/);
  });

  await t.test('repeated wrong keys are slowed down', async () => {
    let last;
    for (let i = 0; i < 6; i++) {
      await login(page, `mk-wrong-${i}`);
      last = await page.textContent('#login-error');
    }
    assert.match(last, /Too many failed logins/);
  });

  assert.deepEqual(pageErrors, [], 'no script errors in the page');
});

