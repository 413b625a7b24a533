#!/usr/bin/env node
// Compiles chainfolio's devnet contracts with solc-js (WASM, no compiler download) and writes
// one artifact per deployable contract: <out>/<Name>.json = {contractName, sourceName, abi,
// bytecode, deployedBytecode, compiler}. Contracts of npm packages get an artifact only when a
// local file imports them by name without declaring a contract of its own (ChainlinkMocks.sol):
// npm bases such as OpenZeppelin's ERC20 are inherited, not deployed.
//
// usage: node compile.js [--contracts DIR] [--out DIR]
// defaults: ../contracts and ../artifacts relative to this file.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function parseArgs(argv) {
  const args = {
    contracts: path.join(__dirname, "..", "contracts"),
    out: path.join(__dirname, "..", "artifacts"),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in args) || argv[i + 1] === undefined) {
      throw new Error(`unknown or incomplete argument: ${argv[i]}`);
    }
    args[key] = path.resolve(argv[i + 1]);
  }
  return args;
}

const DECLARES = /^\s*(abstract\s+)?(contract|library|interface)\s/m;
const NAMED_NPM_IMPORT = /import\s*\{([^}]*)\}\s*from\s*"@[^"]*"/g;

// Names of the npm contracts that import-only local files re-export for deployment.
function reexported(sources) {
  const names = new Set();
  for (const { content } of Object.values(sources)) {
    if (DECLARES.test(content)) {
      continue;
    }
    for (const match of content.matchAll(NAMED_NPM_IMPORT)) {
      match[1].split(",").forEach((name) => names.add(name.trim()));
    }
  }
  return names;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const sources = {};
  for (const file of fs.readdirSync(args.contracts).sort()) {
    if (file.endsWith(".sol")) {
      sources[file] = { content: fs.readFileSync(path.join(args.contracts, file), "utf8") };
    }
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  // "@scope/package/…" imports come from the pinned npm packages (e.g. Chainlink's mocks).
  const findImports = (p) => {
    const full = p.startsWith("@")
      ? path.join(__dirname, "node_modules", p)
      : path.join(args.contracts, p);
    return fs.existsSync(full)
      ? { contents: fs.readFileSync(full, "utf8") }
      : { error: `not found: ${p}` };
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) {
    process.stderr.write(e.formattedMessage + "\n");
  }
  if (errors.length > 0) {
    process.exit(1);
  }
  fs.mkdirSync(args.out, { recursive: true });
  const version = solc.version();
  const npmDeployable = reexported(sources);
  const written = [];
  for (const sourceName of Object.keys(output.contracts).sort()) {
    for (const [contractName, c] of Object.entries(output.contracts[sourceName])) {
      if (!c.evm.bytecode.object) {
        continue; // abstract contracts and interfaces cannot be deployed
      }
      if (sourceName.startsWith("@") && !npmDeployable.has(contractName)) {
        continue;
      }
      const artifact = {
        contractName,
        sourceName,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        compiler: { name: "solc-js", version, settings: SETTINGS },
      };
      const file = path.join(args.out, `${contractName}.json`);
      fs.writeFileSync(file, JSON.stringify(artifact, null, 2) + "\n");
      written.push(contractName);
    }
  }
  process.stdout.write(`compiled ${written.join(", ")} with solc ${version}\n`);
}

main();
