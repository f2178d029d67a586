/** The headless Chromium the browser e2e tests drive (playwright-core on the system's Chromium). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

// Debian's chromium, installed by scripts/services/chromium.sh (run by .ci/run).
const chromiumPath = process.env.WHARF_TEST_CHROMIUM ?? '/usr/bin/chromium';

export interface HeadlessChromium {
  readonly browser: BrowserContext;
  /** The browser's first tab. */
  readonly page: Page;
  /** Closes the browser and removes its profile folder. */
  close(): Promise<void>;
}

/** Starts Chromium headless on a fresh profile, with nothing of its own on the network (no sync, no updates). */
export async function launchChromium(
  options: { readonly viewport?: { width: number; height: number } } = {},
): Promise<HeadlessChromium> {
  const profileDir = await mkdtemp(path.join(tmpdir(), 'wharf-chromium-'));
  const removeProfile = () => rm(profileDir, { recursive: true, force: true });
  let browser: BrowserContext;
  try {
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: chromiumPath,
      headless: true,
      timeout: 30_000,
      ...(options.viewport ? { viewport: options.viewport } : {}),
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  } catch (error) {
    await removeProfile();
    throw error;
  }
  const page = browser.pages()[0] ?? (await browser.newPage());
  return {
    browser,
    page,
    async close() {
      await browser.close();
      await removeProfile();
    },
  };
}
