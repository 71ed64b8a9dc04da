// A page on another origin, in headless Chromium, attacks a roomcast server: a "simple"
// cross-site POST to the API (no CORS preflight: text/plain, no-cors), a JSON POST (which needs
// a preflight), and a WebSocket from an origin the server does not list.
//
// Usage: node tests/browser/cross_site.mjs <roomcast base URL> <attacker page URL>
//
// Run by servers/roomcast/tests/security/browser.rs, which owns both servers and checks that a
// connected client received nothing. Prints one JSON line on stdout with what the page saw.
// Exit codes: 0 ran, 2 bad usage, 3 the browser could not run.
import { chromium } from 'playwright-core';

if (process.argv.length !== 4) {
  process.stderr.write('usage: node cross_site.mjs <roomcast base URL> <attacker page URL>\n');
  process.exit(2);
}
const [base, attacker] = process.argv.slice(2);

let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
} catch (error) {
  process.stderr.write(`cross_site: could not launch Chromium: ${error}\n`);
  process.exit(3);
}
try {
  const page = await browser.newPage();
  await page.goto(attacker);
  const seen = await page.evaluate(async (base) => {
    const body = JSON.stringify({ data: { text: 'forged' } });
    const result = { origin: location.origin };
    // 1. A simple request: the browser sends it without asking; only the server can refuse it.
    try {
      await fetch(`${base}/api/broadcast`, {
        method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body,
      });
      result.simple_sent = true;
    } catch (error) {
      result.simple_sent = false;
    }
    // 2. A JSON request: the browser asks first (OPTIONS) and must not send it.
    try {
      await fetch(`${base}/api/broadcast`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
      });
      result.json_fetch = 'answered';
    } catch (error) {
      result.json_fetch = 'blocked';
    }
    // 3. A WebSocket from this origin, which the server does not list.
    result.websocket = await new Promise((resolve) => {
      const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?user=mallory`);
      const timer = setTimeout(() => resolve('no answer'), 5000);
      ws.onopen = () => { clearTimeout(timer); ws.close(); resolve('opened'); };
      ws.onerror = () => { clearTimeout(timer); resolve('refused'); };
    });
    return result;
  }, base);
  process.stdout.write(`${JSON.stringify(seen)}\n`);
} finally {
  await browser.close();
}
