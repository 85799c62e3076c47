// Builds the committed bundles dist/client.js (script tag, global Instant)
// and dist/client.mjs (ES module) from src/. The output is deterministic: the
// same sources and the pinned esbuild give the same bytes, which
// `--check` verifies against the committed files (CI runs it).
//
//   node scripts/build.mjs            write dist/client.js and dist/client.mjs
//   node scripts/build.mjs --check    fail if dist/ differs from a fresh build (bundles and .d.ts)
//   node scripts/build.mjs --test     build the unit tests' entry into build/
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const banner = `/*! Instant browser client ${pkg.version} (MIT). Bundles centrifuge-js (MIT, github.com/centrifugal/centrifuge-js). Sources: clients/js */`;

const common = {
  absWorkingDir: root,
  entryPoints: ["src/index.ts"],
  bundle: true,
  minify: true,
  target: "es2020",
  platform: "browser",
  charset: "utf8",
  legalComments: "none",
  banner: { js: banner },
  write: false,
  logLevel: "warning",
};

const bundles = {
  "client.js": { ...common, format: "iife", globalName: "Instant" },
  "client.mjs": { ...common, format: "esm" },
};

async function build() {
  const out = {};
  for (const [name, opts] of Object.entries(bundles)) {
    const r = await esbuild.build({ ...opts, outfile: join("dist", name) });
    out[name] = r.outputFiles[0].contents;
  }
  return out;
}

function declarations(outDir) {
  execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json", "--outDir", outDir], {
    cwd: root,
    stdio: "inherit",
  });
  const out = {};
  for (const f of readdirSync(outDir)) {
    out[f] = readFileSync(join(outDir, f));
  }
  return out;
}

const mode = process.argv[2] ?? "";
if (mode === "--test") {
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: ["test/internals.ts"],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2020",
    outfile: "build/internals.mjs",
    logLevel: "warning",
  });
} else if (mode === "--check") {
  const fresh = await build();
  const tmp = mkdtempSync(join(tmpdir(), "instant-dts-"));
  try {
    Object.assign(fresh, declarations(tmp));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const committed = readdirSync(join(root, "dist"));
  const stale = [];
  for (const [name, bytes] of Object.entries(fresh)) {
    let old = null;
    try {
      old = readFileSync(join(root, "dist", name));
    } catch {
      // missing
    }
    if (old === null || Buffer.compare(old, Buffer.from(bytes)) !== 0) {
      stale.push(name);
    }
  }
  for (const name of committed) {
    if (!(name in fresh)) {
      stale.push(name + " (not built any more)");
    }
  }
  if (stale.length > 0) {
    console.error(`clients/js/dist is stale: ${stale.join(", ")} differ from a fresh build.`);
    console.error("Rebuild and commit it: cd clients/js && npm ci && npm run build");
    process.exit(1);
  }
  console.log(`clients/js/dist matches a fresh build (${Object.keys(fresh).length} files)`);
} else if (mode === "") {
  for (const [name, bytes] of Object.entries(await build())) {
    writeFileSync(join(root, "dist", name), bytes);
    console.log(`dist/${name}: ${bytes.length} bytes`);
  }
} else {
  console.error(`unknown argument ${mode} (want --check, --test or nothing)`);
  process.exit(2);
}
