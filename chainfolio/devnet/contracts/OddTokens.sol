// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Odd ERC-20s real mainnet tokens behave like; token discovery and metadata reading are
/// tested against them. OpenZeppelin ships none of these shapes, hence small test contracts.

/// @notice Balances, Transfer events and an open mint: what the shapes below share.
abstract contract PlainBalances {
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function _move(address to, uint256 amount) internal {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        emit Transfer(msg.sender, to, amount);
    }
}

/// @notice Burns 1% of every transfer (STA, PAXG style): the recipient gets less than was sent.
contract FeeOnTransferToken is PlainBalances {
    string public name;
    string public symbol;
    uint8 public immutable decimals;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        uint256 fee = amount / 100;
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount - fee;
        emit Transfer(msg.sender, to, amount - fee);
        emit Transfer(msg.sender, address(0), fee);
        return true;
    }
}

/// @notice `name()` and `symbol()` return bytes32, as MKR and SAI do.
contract Bytes32MetadataToken is PlainBalances {
    bytes32 public constant name = "Maker";
    bytes32 public constant symbol = "MKR";
    uint8 public constant decimals = 18;

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(to, amount);
        return true;
    }
}

/// @notice `transfer` returns nothing (USDT on Ethereum): callers must not expect a bool.
contract NoReturnToken is PlainBalances {
    string public constant name = "No Return Tether";
    string public constant symbol = "NRT";
    uint8 public constant decimals = 6;

    function transfer(address to, uint256 amount) external {
        _move(to, amount);
    }
}

/// @notice `decimals()` reverts: balances are readable but cannot be scaled, so unknown.
contract RevertingDecimalsToken is PlainBalances {
    string public constant name = "No Decimals";
    string public constant symbol = "NODEC";

    function decimals() external pure returns (uint8) {
        revert("RevertingDecimalsToken: no decimals");
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(to, amount);
        return true;
    }
}
