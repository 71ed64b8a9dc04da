// Drives roomcast's admin page (/admin) in headless Chromium against a server started by
// servers/roomcast/tests/admin_browser.rs: the figures stream in and the charts move while this
// script publishes to a room a WebSocket client ("watcher", over `ws`) is in; the room browser
// lists the room, its member and its messages, and publishes a test message the watcher gets;
// the user lookup finds the watcher and disconnects it for good (close 4500). Leaves a
// screenshot. Prints `admin: ok`; every wait is bounded.

import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

import { check, launch, logger, until } from './lib.mjs';

const log = logger('admin', 60_000);
const [base, key, screenshot] = process.argv.slice(2);
check(base && key && screenshot, 'usage: node admin.mjs <base URL> <API key> <screenshot path>');
const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

// The watcher: a WebSocket client in the room, so publishes are delivered.
const frames = [];
let closeCode = null;
const watcher = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?user=watcher`, 'roomcast.v1');
watcher.on('message', (data) => frames.push(JSON.parse(data.toString())));
watcher.on('close', (code) => { closeCode = code; });
await until('the watcher\'s welcome', () => frames.some((f) => f.type === 'welcome'));
watcher.send(JSON.stringify({ type: 'join', ref: 1, room: 'lobby' }));
await until('the watcher\'s join', () => frames.some((f) => f.type === 'reply' && f.ref === 1));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(`${base}/admin`);
  await page.fill('#key', key);
  await page.click('#connect');
  await until('the stream', () => page.evaluate(() => window.admin.state === 'live' && window.admin.samples.length >= 2));
  log('the figures stream in');
  const connections = await page.textContent('#tile-connections');
  check(Number(connections) >= 1, `connections tile says ${connections}`);

  // Publishes for a while: the deliveries chart moves.
  const before = await page.getAttribute('#chart-deliveries', 'data-last');
  for (let i = 0; i < 30; i++) {
    const response = await fetch(`${base}/api/rooms/lobby/publish`, { method: 'POST', headers: auth, body: JSON.stringify({ event: 'tick', data: { n: i } }) });
    check(response.status === 200, `publish: ${response.status}`);
    await sleep(80);
  }
  const peak = await until('deliveries on the chart', () => page.evaluate(() => Math.max(0, ...window.admin.rates.map((r) => r.deliveries))));
  const after = await page.getAttribute('#chart-deliveries', 'data-last');
  log(`deliveries per second peaked at ${peak}; the chart's last value went ${before} -> ${after}`);
  check(before !== after || peak > 0, 'the deliveries chart did not move');

  // The room browser.
  await page.click('#rooms-refresh');
  await page.waitForSelector('tr[data-room="lobby"]', { timeout: 10_000 });
  await page.click('tr[data-room="lobby"]');
  await until('the members', async () => (await page.textContent('#room-members')).includes('watcher'));
  await until('the messages', async () => (await page.locator('#room-messages li').count()) > 0);
  await page.fill('#publish-data', '{"text":"from the admin page"}');
  await page.click('#publish');
  await until('the publish answered', async () => (await page.textContent('#publish-result')) !== '');
  log(`publish: ${await page.textContent('#publish-result')}`);
  await until('the test message at the watcher', () => frames.some((f) => f.type === 'message' && f.event === 'admin.test' && f.data.text === 'from the admin page'));
  log('the room browser lists, shows and publishes');

  // The user lookup, and a disconnect for good.
  await page.fill('#user-name', 'watcher');
  await page.click('#user-lookup');
  await until('the user', async () => (await page.textContent('#user-result')).includes('online'));
  await page.screenshot({ path: path.resolve(screenshot), fullPage: true });
  await page.click('#disconnect-away');
  await until('the watcher closed with 4500', () => closeCode === 4500);
  log('the user lookup finds and disconnects');
  console.log('admin: ok');
} finally {
  await browser.close();
  watcher.terminate();
}
