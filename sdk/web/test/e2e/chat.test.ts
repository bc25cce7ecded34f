// The demo page in a real Chromium (Debian's, through playwright-core): alice and bob in two
// browser contexts chat through examples/web-chat served by imd; the server restarts mid-way;
// bob's page reloads and keeps its position. Any page error or console error fails the test.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { chromium, type Browser, type Page } from 'playwright-core';

import { Imd, freePort } from '../support/imd.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const demoDir = new URL('../../../../../examples/web-chat/dist/', import.meta.url).pathname;
const resultsDir = new URL('../../../test-results/', import.meta.url).pathname;
const kWait = 20000;
// The first start of Chromium on a fresh machine builds its font and profile caches; it has
// been seen to take over 20 s there. A launch gets two minutes and one more try.
const kLaunchWait = 120000;

// Chromium logs a refused WebSocket handshake as a console error by itself; while the server
// restarts that is expected. Every other console error fails the test.
const kNetworkNoise = /WebSocket connection to '.*' failed|ERR_CONNECTION_REFUSED/;

let imd: Imd;
let browser: Browser;
const problems: string[] = [];

before(async () => {
  imd = await Imd.start({
    httpPort: await freePort(), toml: `[http]\nstatic_dir = "${demoDir}"\n`,
  });
  const launch = () => chromium.launch({
    executablePath: chromiumPath, headless: true, args: [
      // Headless as root in a closed network: no sandbox, and none of Chromium's own
      // background connections (refused here, and noise in the console).
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ], timeout: kLaunchWait,
  });
  try {
    browser = await launch();
  } catch (e) {
    console.error(`chromium did not start, trying once more: ${String(e).split('\n')[0]}`);
    browser = await launch();
  }
});
after(async () => {
  await browser?.close();
  await imd?.close();
});

async function newPage(name: string): Promise<Page> {
  const context = await browser.newContext();
  context.setDefaultTimeout(kWait);
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`${name} page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !kNetworkNoise.test(m.text())) {
      problems.push(`${name} console error: ${m.text()}`);
    }
  });
  await page.goto(imd.httpUrl + '/');
  return page;
}

async function register(page: Page, user: string): Promise<void> {
  await page.fill('#user', user);
  await page.fill('#password', 'correct horse battery');
  await page.click('#register');
  await waitState(page, 'ready');
}

async function waitState(page: Page, state: string): Promise<void> {
  await page.waitForFunction((s) => document.getElementById('state')?.textContent === s, state,
                             { timeout: kWait });
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.click('#send');
}

/** The bodies shown in the open conversation, stored ones only. */
function shown(page: Page): Promise<string[]> {
  return page.$$eval('#messages li[data-mid] .body', (els) => els.map((e) => e.textContent ?? ''));
}

async function waitShown(page: Page, texts: string[]): Promise<void> {
  try {
    await page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('#messages li[data-mid] .body')]
        .map((e) => e.textContent);
      return JSON.stringify(got) === JSON.stringify(want);
    }, texts, { timeout: kWait });
  } catch (e) {
    throw new Error(`expected ${JSON.stringify(texts)}, shown ${JSON.stringify(await shown(page))}`);
  }
}

test('two browsers chat through the demo; a restart and a reload lose and repeat nothing',
     { skip: !existsSync(chromiumPath) && `no Chromium at ${chromiumPath}` }, async () => {
  mkdirSync(resultsDir, { recursive: true });
  const alice = await newPage('alice');
  const bob = await newPage('bob');
  try {
    await register(alice, 'alice');
    await register(bob, 'bob');

    await alice.fill('#peer', 'bob');
    await alice.click('#open');
    await say(alice, 'hello bob');
    await bob.click('#conversations li[data-conversation="u:alice"]');
    await waitShown(bob, ['hello bob']);
    await say(bob, 'hi alice');
    await waitShown(alice, ['hello bob', 'hi alice']);

    // The server restarts (a drain, then a new process on the same data and port).
    await imd.stop();
    await waitState(alice, 'disconnected');
    await say(alice, 'sent while the server was down');  // waits in the outbox
    await imd.run();
    await waitState(alice, 'ready');
    await waitState(bob, 'ready');
    await waitShown(bob, ['hello bob', 'hi alice', 'sent while the server was down']);

    // A reload resumes from the stored position: the same list, nothing twice.
    await bob.reload();
    await waitState(bob, 'ready');
    await bob.click('#conversations li[data-conversation="u:alice"]');
    await say(alice, 'after the reload');
    await waitShown(bob, ['hello bob', 'hi alice', 'sent while the server was down',
                          'after the reload']);
    const mids = await bob.$$eval('#messages li[data-mid]', (els) =>
      els.map((e) => (e as HTMLElement).dataset.mid));
    assert.equal(new Set(mids).size, mids.length);

    // A group: alice creates, bob joins, both write.
    await alice.fill('#group-name', 'team-e2e');
    await alice.click('#create-group');
    await alice.waitForSelector('#conversations li[data-conversation="g:team-e2e"]');
    await bob.fill('#group-name', 'team-e2e');
    await bob.click('#join-group');
    await bob.waitForSelector('#conversations li[data-conversation="g:team-e2e"].active');
    await say(bob, 'hello team');
    await alice.click('#conversations li[data-conversation="g:team-e2e"]');
    await waitShown(alice, ['hello team']);
  } finally {
    await alice.screenshot({ path: `${resultsDir}/e2e-alice.png` });
    await bob.screenshot({ path: `${resultsDir}/e2e-bob.png` });
  }
  assert.deepEqual(problems, []);
});
