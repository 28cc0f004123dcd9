// Loads wamp-server/assets/wamp1.js as an ES module in Node.
// The asset is a plain `.js` file outside any package.json with "type": "module", so it is
// imported from its source text (a data: URL) rather than by path; it has no imports of its own.
import { readFile } from 'node:fs/promises';

export const CLIENT_PATH = new URL('../../wamp-server/assets/wamp1.js', import.meta.url);

export async function loadClient() {
  const source = await readFile(CLIENT_PATH, 'utf8');
  return import(`data:text/javascript;charset=utf-8,${encodeURIComponent(source)}`);
}
