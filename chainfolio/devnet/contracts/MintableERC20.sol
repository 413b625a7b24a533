// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MintableERC20
/// @notice OpenZeppelin's ERC20 (pinned npm package @openzeppelin/contracts) with configurable
///         decimals and an open mint: anyone may mint, since it is a devnet test fixture.
contract MintableERC20 is ERC20 {
    uint8 private immutable _decimals;

    constructor(string memory name_, string memory symbol_, uint8 decimals_)
        ERC20(name_, symbol_)
    {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Mints amounts[i] to to[i]; funds many wallets in one transaction.
    function mintBatch(address[] calldata to, uint256[] calldata amounts) external {
        require(to.length == amounts.length, "MintableERC20: length mismatch");
        for (uint256 i = 0; i < to.length; i++) {
            _mint(to[i], amounts[i]);
        }
    }

    function burn(uint256 amount) external {
        _burn(msg.sender, amount);
    }
}
