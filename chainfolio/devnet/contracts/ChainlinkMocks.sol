// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Chainlink's own aggregator mock, compiled from the pinned npm package @chainlink/contracts
// (see node/package.json): every devnet feed (ETH, BTC, USDC, DAI, the NFT floor and the FX
// rates) is a MockV3Aggregator instance, the contract Chainlink ships for tests.
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/tests/MockV3Aggregator.sol";
