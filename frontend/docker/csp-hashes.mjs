// Prints the CSP sources ('sha256-...') of the inline <script> blocks of a built index.html, so
// the CSP can allow exactly those and no other inline script. Usage: node csp-hashes.mjs FILE
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const html = readFileSync(process.argv[2], 'utf8');
const hashes = [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)]
  .map(([, body]) => `'sha256-${createHash('sha256').update(body, 'utf8').digest('base64')}'`);
process.stdout.write(hashes.join(' '));
