// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title RevertingToken
/// @notice Looks like an ERC-20 but `balanceOf` always reverts: a balance that is unknown, not zero.
contract RevertingToken {
    string public constant name = "Broken Token";
    string public constant symbol = "BRKN";
    uint8 public constant decimals = 18;
    uint256 public constant totalSupply = 0;

    function balanceOf(address) external pure returns (uint256) {
        revert("RevertingToken: balanceOf always reverts");
    }
}
