/**
 * Headless Chromium for console tests: Debian's `chromium` (installed with apt-get when missing) driven by
 * playwright-core, with a fresh profile and nothing that reaches the internet; plus axe-core's accessibility check.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ensureAptPackage } from './apt.ts';
import { tempDir } from './server.ts';

export const chromiumPath = '/usr/bin/chromium';

/** Installs Debian's chromium package if it is not there. */
export const ensureChromium = (): string => ensureAptPackage(chromiumPath, 'chromium');

/** A headless browser with its own fresh profile directory; close it with `context.close()`. */
export async function launchBrowser(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(tempDir('tailplane-chromium-'), {
    executablePath: ensureChromium(),
    headless: true,
    viewport: { width: 1280, height: 860 },
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
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical violations on the page, as "rule: target" lines (empty when there are none). */
export async function seriousA11yViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, which the page's CSP (no inline scripts) does not govern.
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    return (await axe.run()).violations;
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')}`));
}

/**
 * Presses Tab from the top of the page until focus comes back around, and returns the visible interactive
 * elements (links, buttons, fields) it never reached, described by tag and text.
 */
export async function unreachableByKeyboard(page: Page, maxTabs = 400): Promise<string[]> {
  const count = await page.evaluate(() => {
    const all = [...document.querySelectorAll<HTMLElement>('a[href], button:not(:disabled), input:not([type=hidden]):not(:disabled), select:not(:disabled), textarea:not(:disabled)')];
    const visible = all.filter((el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden');
    visible.forEach((el, i) => el.setAttribute('data-kb', String(i)));
    (document.activeElement as HTMLElement | null)?.blur();
    return visible.length;
  });
  const reached = new Set<string>();
  for (let i = 0; i < maxTabs && reached.size < count; i++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => document.activeElement?.getAttribute('data-kb') ?? null);
    if (id !== null) reached.add(id);
  }
  return page.evaluate(
    (seen) =>
      [...document.querySelectorAll<HTMLElement>('[data-kb]')]
        .filter((el) => !seen.includes(el.getAttribute('data-kb')!))
        .map((el) => `<${el.tagName.toLowerCase()}> ${(el.textContent || el.getAttribute('aria-label') || el.getAttribute('name') || '').trim()}`),
    [...reached],
  );
}

/** Logs the page in (afresh) to the console at `url` with an admin API key, through the login form; ends on the machines page. */
export async function logInConsole(page: Page, url: string, key: string): Promise<void> {
  await page.context().clearCookies();
  await page.goto(`${url}/admin/machines`);
  if (!/\/admin\/login\?next=/.test(page.url())) throw new Error(`expected the login page, got ${page.url()}`);
  await page.getByLabel('Admin API key').fill(key);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/admin\/machines$/);
}
