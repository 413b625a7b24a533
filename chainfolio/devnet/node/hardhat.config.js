// Hardhat config for chainfolio's local devnet: one `hardhat node` per chain, chain id from
// CHAINFOLIO_DEVNET_CHAIN_ID. Nothing here touches the network: no forking, no compilation
// (contracts are compiled by compile.js with solc-js), no telemetry.
"use strict";

const path = require("path");

const chainId = Number.parseInt(process.env.CHAINFOLIO_DEVNET_CHAIN_ID || "31337", 10);
if (!Number.isSafeInteger(chainId) || chainId <= 0) {
  throw new Error(`invalid CHAINFOLIO_DEVNET_CHAIN_ID: ${process.env.CHAINFOLIO_DEVNET_CHAIN_ID}`);
}

// Die with the process that started us: if it is killed without stopping us (SIGKILL, crash),
// we are re-parented and must not linger as an orphan holding a port.
const parentPid = Number.parseInt(process.env.CHAINFOLIO_DEVNET_PARENT_PID || "0", 10);
if (parentPid > 0) {
  setInterval(() => {
    if (process.ppid !== parentPid) {
      process.exit(0);
    }
  }, 500).unref();
}

// Stop on SIGINT/SIGTERM even when started with them ignored (a parent launched as `cmd &`
// passes SIG_IGN on): a listener installs a handler whatever was inherited.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}

const scratch = path.join(__dirname, "scratch");

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  defaultNetwork: "hardhat",
  networks: {
    hardhat: {
      chainId,
      mining: { auto: true, interval: 0 },
      // Base fee 0 keeps native balances exact when tests send transactions at zero gas price.
      initialBaseFeePerGas: 0,
      blockGasLimit: 100_000_000,
      allowUnlimitedContractSize: false,
      loggingEnabled: false,
    },
  },
  paths: {
    sources: path.join(scratch, "contracts"),
    cache: path.join(scratch, "cache"),
    artifacts: path.join(scratch, "artifacts"),
    tests: path.join(scratch, "test"),
  },
};
