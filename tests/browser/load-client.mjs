// Loads wamp-server/assets/wamp1.js in Node as a browser loads it: a classic script that
// defines globalThis.wamp1 (and globalThis.ab). Each call evaluates a fresh copy.
import { readFile } from 'node:fs/promises';
import vm from 'node:vm';

export const CLIENT_PATH = new URL('../../wamp-server/assets/wamp1.js', import.meta.url);

/** The client's namespace (`wamp1`); its `ab` member is the AutobahnJS 0.8 API. */
export async function loadClient() {
  const source = await readFile(CLIENT_PATH, 'utf8');
  const before = globalThis.wamp1;
  const hadAb = 'ab' in globalThis;
  vm.runInThisContext(source, { filename: CLIENT_PATH.pathname });
  const client = globalThis.wamp1;
  if (before === undefined) delete globalThis.wamp1;
  else globalThis.wamp1 = before;
  if (!hadAb) delete globalThis.ab;
  return client;
}
