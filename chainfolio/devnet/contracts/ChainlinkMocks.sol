// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Chainlink's own aggregator mock, compiled from the pinned npm package @chainlink/contracts
// (see node/package.json): the devnet's FX feeds (EUR/USD, GBP/USD, CHF/USD, JPY/USD) are
// MockV3Aggregator instances, the contract Chainlink ships for tests.
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/tests/MockV3Aggregator.sol";
