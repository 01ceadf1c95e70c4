// Build the loadable extensions: dist/chrome (manifest.json) and dist/firefox (manifest.firefox.json). esbuild
// bundles the worker and the panel (deck.gl included, nothing fetched at run time); HTML, CSS and icons are copied.
// The build fails if a bundle contains eval or new Function, which MV3's CSP would block at run time.
//
//   node build.mjs            both targets
//   node build.mjs chrome     one target

import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const TARGETS = {
  chrome: { manifest: 'manifest.json', esbuildTarget: 'chrome116' },
  firefox: { manifest: 'manifest.firefox.json', esbuildTarget: 'firefox128' },
};
const ENTRIES = ['service-worker/service-worker.js', 'sidepanel/sidepanel.js'];
const STATIC = ['sidepanel/sidepanel.html', 'sidepanel/sidepanel.css', 'icons'];
// `new Function(` / `eval(` as code, not inside a longer identifier such as `evaluate(`.
const FORBIDDEN = [/\bnew\s+Function\s*\(/, /(?<![\w$.])eval\s*\(/];

async function buildTarget(name) {
  const { manifest, esbuildTarget } = TARGETS[name];
  const outdir = path.join(ROOT, 'dist', name);
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ENTRIES,
    outdir,
    outbase: ROOT,
    bundle: true,
    format: 'iife',
    target: esbuildTarget,
    minify: true,
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
    define: { __BROWSER__: JSON.stringify(name) },
  });
  for (const file of Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'))) {
    const code = await readFile(path.join(ROOT, file), 'utf8');
    const hit = FORBIDDEN.find((pattern) => pattern.test(code));
    if (hit) throw new Error(`${file} contains ${hit}: MV3's CSP forbids it`);
  }
  for (const item of STATIC) await cp(path.join(ROOT, item), path.join(outdir, item), { recursive: true });
  await writeFile(path.join(outdir, 'manifest.json'), await readFile(path.join(ROOT, manifest)));
  return outdir;
}

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(TARGETS)) {
  if (!TARGETS[name]) throw new Error(`unknown target ${name}; known: ${Object.keys(TARGETS).join(', ')}`);
  console.log(`built ${path.relative(process.cwd(), await buildTarget(name))}`);
}
