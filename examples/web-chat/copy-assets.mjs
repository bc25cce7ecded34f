// Completes the demo build: dist/ gets the page, its style and the SDK's modules (dist/sdk/),
// which the page's import map names "@libim/web".
import { cpSync, mkdirSync, rmSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const dist = new URL('dist/', here);
rmSync(new URL('sdk/', dist), { recursive: true, force: true });
mkdirSync(new URL('sdk/', dist), { recursive: true });
cpSync(new URL('index.html', here), new URL('index.html', dist));
cpSync(new URL('style.css', here), new URL('style.css', dist));
cpSync(new URL('../../sdk/web/dist/', here), new URL('sdk/', dist), {
  recursive: true,
  filter: (src) => !src.endsWith('.d.ts'),
});
console.log(`web-chat: built ${dist.pathname}`);
