// Drives the demo page's notification centre in headless Chromium against a server started by
// servers/roomcast/tests/notifications_browser.rs: alice and bob on pages of their own; a
// direct message from alice and a notification from the API light bob's bell (2 unread) and,
// with the permission granted, raise desktop notifications; bob's click on the newest marks
// everything read through the engine's read mark (0 unread), alice's receipt turns to "read";
// a reload of bob's page shows the server's count again. Prints `notifications: ok`; every
// wait is bounded.

import { check, launch, logger, until } from './lib.mjs';

const log = logger('notifications', 60_000);
const [base, key] = process.argv.slice(2);
check(base && key, 'usage: node notifications.mjs <base URL> <API key>');

async function notify(user, event, text) {
  const response = await fetch(`${base}/api/notify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user, event, data: { text } }),
  });
  check(response.status === 200, `notify: ${response.status}`);
}

const unread = (page) => page.getAttribute('#unread', 'data-count').then(Number);

const browser = await launch();
try {
  const open = async (user, permissions) => {
    const context = await browser.newContext({ permissions });
    const page = await context.newPage();
    page.on('pageerror', (e) => log(`${user}: page error: ${e.message}`));
    await page.goto(`${base}/?user=${user}&autojoin=1`);
    await page.waitForSelector('#status[data-state="open"]', { timeout: 10_000 });
    await page.waitForSelector('#sse-status[data-state="open"]', { timeout: 10_000 });
    return page;
  };
  const alice = await open('alice', []);
  const bob = await open('bob', ['notifications']);
  check((await unread(bob)) === 0, 'bob starts with nothing unread');

  await alice.fill('#dm-to', 'bob');
  await alice.fill('#dm-text', 'hello bob');
  await alice.click('#dm-send');
  await alice.waitForSelector('#receipts li[data-delivered="true"]', { timeout: 10_000 });
  await until('bob: 1 unread', async () => (await unread(bob)) === 1);
  await notify('bob', 'invoice', 'invoice #7 paid');
  await until('bob: 2 unread', async () => (await unread(bob)) === 2);
  check((await bob.locator('#notifications li[data-unread="true"]').count()) === 2, 'two items unread');
  const alerts = await bob.evaluate(() => window.demo.desktop.length);
  check(alerts >= 2, `desktop notifications: ${alerts}`);
  log('a direct message and a notification: 2 unread, desktop alerts raised');

  // A click on the newest marks it and everything before it read, on the server.
  await bob.click('#notifications li[data-event="invoice"]');
  await until('bob: 0 unread', async () => (await unread(bob)) === 0);
  check((await bob.locator('#notifications li[data-unread="true"]').count()) === 0, 'nothing left unread');
  await alice.waitForSelector('#receipts li[data-read="true"]', { timeout: 10_000 });
  check((await alice.textContent('#receipts li[data-read="true"] .receipt')).includes('read'), 'alice sees it read');
  log('marked read: the badge clears and alice gets the receipt');

  // The count is the server's: a reload shows what is unread after the mark.
  await notify('bob', 'reminder', 'renew your plan');
  await until('bob: 1 unread', async () => (await unread(bob)) === 1);
  await bob.reload();
  await bob.waitForSelector('#status[data-state="open"]', { timeout: 10_000 });
  await until('bob after a reload: 1 unread', async () => (await unread(bob)) === 1);
  log('a reload shows the server\'s count');
  console.log('notifications: ok');
} finally {
  await browser.close();
}
