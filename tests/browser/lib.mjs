// What the browser scripts of the API's pages share (admin.mjs, notifications.mjs): a logger
// with the time since start, a check, a bounded wait, and Chromium started as every test here
// starts it.

import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

/** A logger to stderr, prefixed with `name` and the seconds since the script began; the whole
 * script is killed after `totalMs`. */
export function logger(name, totalMs) {
  const t0 = Date.now();
  const log = (msg) => process.stderr.write(`${name} [${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
  setTimeout(() => { log('over the total timeout'); process.exit(1); }, totalMs).unref();
  return log;
}

export function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** Waits until `test()` is truthy, polling every 100 ms, for at most `ms`; returns its value. */
export async function until(what, test, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await test();
    if (value) return value;
    check(Date.now() < deadline, `${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

/** Headless Chromium ($CHROMIUM, else Debian's), with the flags this machine's closed network
 * needs. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
