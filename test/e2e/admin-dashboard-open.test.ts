import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { type HeadlessChromium, launchChromium } from '../support/chromium.ts';
import { HookReceiver } from '../support/hook-receiver.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * The dashboard against an admin API without a token (loopback only): the server refuses cross-site requests
 * (Origin, Sec-Fetch-Site, Content-Type checks), so this proves that what a real browser sends from the page
 * itself still passes: the live stream moves a progress bar, and Disable / Enable / Ping work.
 */

let receiver: HookReceiver;
let wharf: WharfProcess;
let chrome: HeadlessChromium | undefined;
let page: Page;
const scriptErrors: string[] = [];

before(
  async () => {
    receiver = new HookReceiver();
    await receiver.start();
    wharf = await startWharf({
      args: ['--admin', '--hooks-http-urls', receiver.url, '--hooks', 'post-finish'],
      env: { WHARF_ADMIN_TOKEN: '' },
    });
    chrome = await launchChromium();
    page = chrome.page;
    page.on('pageerror', (error) => scriptErrors.push(error.message));
  },
  { timeout: 60_000 },
);

after(async () => {
  await chrome?.close();
  await wharf?.stop();
  await receiver?.close();
});

describe('the dashboard with no admin token, in headless Chromium', { timeout: 120_000 }, () => {
  it('follows the live stream and its target buttons work from its own origin', async () => {
    const upload = await createUpload(wharf.endpoint, { 'Upload-Length': 1000 });
    const id = upload.replace(/\/$/, '').split('/').pop() ?? '';

    await page.goto(`${wharf.origin}/admin`);
    // No token is configured: any text opens the page.
    await page.getByLabel('Admin token').fill('none');
    await page.getByRole('button', { name: 'Open the dashboard' }).click();
    const uploadRow = page.locator(`#uploads-body tr[data-upload-id="${id}"]`);
    await uploadRow.getByText('0 %').waitFor();

    // Progress reaches the page (stream or its polling fallback, both through the guarded API).
    const patched = await send('PATCH', upload, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: Buffer.alloc(500, 7),
    });
    assert.equal(patched.status, 204);
    await uploadRow.getByText('50 %').waitFor();

    const targetRow = page.locator('#targets-body tr').first();
    const target = await targetRow.getAttribute('data-target');
    assert.ok(target);
    const calls = receiver.received.length;
    await targetRow.getByRole('button', { name: `Ping ${target}` }).click();
    await page.getByText(`Ping ${target}: completed, HTTP 200`, { exact: false }).waitFor();
    assert.ok(receiver.received.length > calls, 'the ping reached the receiver');
    await targetRow.getByRole('button', { name: `Disable ${target}` }).click();
    await targetRow.getByText('disabled (manual)').waitFor();
    await targetRow.getByRole('button', { name: `Enable ${target}` }).click();
    await targetRow.getByRole('button', { name: `Disable ${target}` }).waitFor();
    assert.deepEqual(scriptErrors, [], 'no uncaught script error');
  });
});
