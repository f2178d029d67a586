import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { type ClientRequest, request } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { redactTarget } from '../../src/hooks/delivery/target-guard.ts';
import { type HeadlessChromium, launchChromium } from '../support/chromium.ts';
import { HookReceiver } from '../support/hook-receiver.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { repoRoot, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const screenshot = path.join(repoRoot, 'test-artifacts/admin-dashboard.png');
const token = 'dashboard-e2e-token';
/** Upload metadata is user input: the page must show it as text, never as markup. */
const hostileName = '<img src=x onerror="document.title=\'pwned\'">report.pdf';
const KiB = 1024;

let receiver: HookReceiver;
let wharf: WharfProcess;
let chrome: HeadlessChromium | undefined;
let page: Page;
/** Content-Security-Policy violations the browser reported, and uncaught script errors. */
const cspViolations: string[] = [];
const scriptErrors: string[] = [];

before(
  async () => {
    receiver = new HookReceiver();
    await receiver.start();
    wharf = await startWharf({
      args: [
        '--admin',
        '--admin-token',
        token,
        '--hooks-http-urls',
        receiver.url,
        '--hooks',
        'post-finish',
        '--hooks-retry-schedule',
        '100ms',
      ],
    });
    chrome = await launchChromium({ viewport: { width: 1280, height: 900 } });
    page = chrome.page;
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) cspViolations.push(message.text());
    });
    page.on('pageerror', (error) => scriptErrors.push(error.message));
  },
  { timeout: 60_000 },
);

after(async () => {
  await chrome?.close();
  await wharf?.stop();
  await receiver?.close();
});

function idOf(url: string): string {
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

async function patch(url: string, offset: number, bytes: number): Promise<void> {
  const reply = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': offset },
    body: Buffer.alloc(bytes, 7),
  });
  assert.equal(reply.status, 204, reply.text);
}

/** Starts a PATCH of `length` bytes and leaves its body open: the caller writes and ends it. */
function holdPatch(url: string, offset: number, length: number): ClientRequest & { status: Promise<number> } {
  const req = request(url, {
    method: 'PATCH',
    headers: { ...tus, ...octets, 'Upload-Offset': offset, 'Content-Length': length },
    agent: false,
  });
  const status = new Promise<number>((resolve, reject) => {
    req.once('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
  });
  return Object.assign(req, { status });
}

// A hung browser or server fails the file within two minutes instead of holding CI.
describe('the admin dashboard in headless Chromium against the real server', { timeout: 120_000 }, () => {
  it('serves the page without the token, with a strict CSP, and the API still asks for it', async () => {
    const html = await send('GET', `${wharf.origin}/admin`);
    assert.equal(html.status, 200);
    assert.equal(html.headers['content-type'], 'text/html; charset=utf-8');
    const csp = String(html.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.doesNotMatch(html.text, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(html.text, new RegExp(token));
    const script = await send('GET', `${wharf.origin}/admin/app.js`);
    assert.equal(script.status, 200);
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
    const css = await send('GET', `${wharf.origin}/admin/dashboard.css`);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const api = await send('GET', `${wharf.origin}/admin/api/uploads`);
    assert.equal(api.status, 401);
  });

  it('is not served without --admin', async () => {
    const plain = await startWharf();
    try {
      for (const pathname of ['/admin', '/admin/', '/admin/app.js']) {
        const reply = await send('GET', `${plain.origin}${pathname}`);
        assert.equal(reply.status, 404, pathname);
        assert.doesNotMatch(reply.text, /Wharf admin|AdminApi/, pathname);
      }
    } finally {
      await plain.stop();
    }
  });

  it('shows live upload progress, a dead-lettered delivery, and resends it to the receiver', async () => {
    // A finished upload whose post-finish the receiver refuses until it is dead-lettered.
    receiver.answer = () => ({ status: 500, body: 'receiver down' });
    const finished = await createUpload(wharf.endpoint, { 'Upload-Length': 100 });
    await patch(finished, 0, 100);
    const finishedId = idOf(finished);
    await receiver.waitUntil(
      (received) => received.filter((hook) => hook.name === 'post-finish').length >= 2,
      'two failed post-finish attempts',
    );

    // An upload in progress: a quarter of it is in.
    const name = Buffer.from(hostileName).toString('base64');
    const running = await createUpload(wharf.endpoint, {
      'Upload-Length': 1024 * KiB,
      'Upload-Metadata': `filename ${name}`,
    });
    const runningId = idOf(running);
    await patch(running, 0, 256 * KiB);

    await page.goto(`${wharf.origin}/admin`);
    // A wrong token is refused and the form asks again.
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Open the dashboard' }).click();
    await page.getByText('The token was refused.').waitFor();
    await page.getByLabel('Admin token').fill(token);
    await page.getByRole('button', { name: 'Open the dashboard' }).click();

    const uploadRow = page.locator(`#uploads-body tr[data-upload-id="${runningId}"]`);
    await uploadRow.getByText('25 %').waitFor();
    assert.equal(await uploadRow.locator('progress').getAttribute('value'), '25');
    // The metadata is shown as text; no element was made from it.
    assert.equal(await uploadRow.locator('td').first().textContent(), hostileName);
    assert.equal(await page.locator('#uploads-body img').count(), 0);

    // A PATCH is running: a third of its body is sent and the connection held. The bar moves without a reload.
    const held = holdPatch(running, 256 * KiB, 768 * KiB);
    held.write(Buffer.alloc(256 * KiB, 7));
    await uploadRow.getByText('50 %').waitFor();
    assert.equal(await uploadRow.locator('progress').getAttribute('value'), '50');

    // The failed delivery is listed as dead-lettered, with the receiver's status.
    const target = redactTarget(`http:${receiver.url}`);
    const failedRow = page
      .locator(`#failed-body tr[data-target="${target}"]`)
      .filter({ hasText: finishedId });
    await failedRow.getByText(/dead-lettered/).waitFor();
    // The event's runs are shown with their status.
    const eventRow = page.locator('#events-body tr').filter({ hasText: finishedId });
    await eventRow.locator('.run-failed').first().waitFor();
    // The target is listed with its health.
    await page.locator(`#targets-body tr[data-target="${target}"]`).getByText('failing').waitFor();

    await mkdir(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });

    // The receiver is back: Resend makes the event arrive, and the row leaves the list.
    receiver.answer = () => ({ status: 200 });
    const before = receiver.forUpload(finishedId).length;
    await failedRow.getByRole('button', { name: /^Resend post-finish/ }).click();
    await receiver.waitUntil(
      () => receiver.forUpload(finishedId).some((hook, index) => index >= before && hook.answered),
      'the resent post-finish',
    );
    const resent = receiver.forUpload(finishedId).slice(before);
    assert.equal(resent[0]?.name, 'post-finish');
    await page.getByText(/^Resent post-finish/).waitFor();
    await failedRow.waitFor({ state: 'detached' });
    await eventRow.locator('.run-completed').first().waitFor();

    // The rest of the held PATCH arrives: the upload is finished and leaves the list.
    held.end(Buffer.alloc(512 * KiB, 7));
    assert.equal(await held.status, 204);
    await uploadRow.waitFor({ state: 'detached' });
    await page.getByText('No upload in progress.').waitFor();

    // Target controls: a ping reaches the receiver and its answer is shown; disable and enable flip the health.
    const targetRow = page.locator(`#targets-body tr[data-target="${target}"]`);
    const calls = receiver.received.length;
    await targetRow.getByRole('button', { name: `Ping ${target}` }).click();
    await page.getByText(`Ping ${target}: completed, HTTP 200`, { exact: false }).waitFor();
    assert.ok(receiver.received.length > calls, 'the ping reached the receiver');
    await targetRow.getByRole('button', { name: `Disable ${target}` }).click();
    await targetRow.getByText('disabled (manual)').waitFor();
    await targetRow.getByRole('button', { name: `Enable ${target}` }).click();
    await targetRow.getByRole('button', { name: `Disable ${target}` }).waitFor();
    assert.notEqual(await targetRow.locator('.badge').textContent(), 'disabled (manual)');

    assert.notEqual(await page.title(), 'pwned');
    assert.deepEqual(cspViolations, [], 'nothing the page does is refused by its CSP');
    assert.deepEqual(scriptErrors, [], 'no uncaught script error');
  });
});

/**
 * The dashboard against an admin API without a token (loopback only): the server refuses cross-site requests
 * (Origin, Sec-Fetch-Site, Content-Type checks), so this proves that what a real browser sends from the page
 * itself still passes: the live stream moves a progress bar, and Disable / Enable / Ping work. A server, a
 * receiver and a tab of their own, in the same Chromium (its start is most of a browser test's CPU).
 */
describe('the dashboard with no admin token, in headless Chromium', { timeout: 120_000 }, () => {
  let openReceiver: HookReceiver;
  let open: WharfProcess;
  let openPage: Page;
  const openScriptErrors: string[] = [];

  before(
    async () => {
      openReceiver = new HookReceiver();
      await openReceiver.start();
      open = await startWharf({
        args: ['--admin', '--hooks-http-urls', openReceiver.url, '--hooks', 'post-finish'],
        env: { WHARF_ADMIN_TOKEN: '' },
      });
      assert.ok(chrome);
      openPage = await chrome.browser.newPage();
      openPage.on('pageerror', (error) => openScriptErrors.push(error.message));
    },
    { timeout: 60_000 },
  );

  after(async () => {
    await openPage?.close();
    await open?.stop();
    await openReceiver?.close();
  });

  it('follows the live stream and its target buttons work from its own origin', async () => {
    const upload = await createUpload(open.endpoint, { 'Upload-Length': 1000 });
    const id = idOf(upload);

    await openPage.goto(`${open.origin}/admin`);
    // No token is configured: any text opens the page.
    await openPage.getByLabel('Admin token').fill('none');
    await openPage.getByRole('button', { name: 'Open the dashboard' }).click();
    const uploadRow = openPage.locator(`#uploads-body tr[data-upload-id="${id}"]`);
    await uploadRow.getByText('0 %').waitFor();

    // Progress reaches the page (stream or its polling fallback, both through the guarded API).
    await patch(upload, 0, 500);
    await uploadRow.getByText('50 %').waitFor();

    const targetRow = openPage.locator('#targets-body tr').first();
    const target = await targetRow.getAttribute('data-target');
    assert.ok(target);
    const calls = openReceiver.received.length;
    await targetRow.getByRole('button', { name: `Ping ${target}` }).click();
    await openPage.getByText(`Ping ${target}: completed, HTTP 200`, { exact: false }).waitFor();
    assert.ok(openReceiver.received.length > calls, 'the ping reached the receiver');
    await targetRow.getByRole('button', { name: `Disable ${target}` }).click();
    await targetRow.getByText('disabled (manual)').waitFor();
    await targetRow.getByRole('button', { name: `Enable ${target}` }).click();
    await targetRow.getByRole('button', { name: `Disable ${target}` }).waitFor();
    assert.deepEqual(openScriptErrors, [], 'no uncaught script error');
  });
});
