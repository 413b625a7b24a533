// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IERC20Balance {
    function balanceOf(address owner) external view returns (uint256);
}

/// @title UniswapV2StylePair
/// @notice The read side of a Uniswap V2 pair: `token0`/`token1` sorted by address and
///         `getReserves()` as stored by `sync()`, which records the pair's token balances.
///         Tests fund the pair by transferring or minting tokens to it, then call `sync()`.
contract UniswapV2StylePair {
    address public immutable token0;
    address public immutable token1;

    uint112 private reserve0;
    uint112 private reserve1;
    uint32 private blockTimestampLast;

    event Sync(uint112 reserve0, uint112 reserve1);

    constructor(address tokenA, address tokenB) {
        require(tokenA != tokenB, "UniswapV2StylePair: identical tokens");
        (token0, token1) = tokenA < tokenB ? (tokenA, tokenB) : (tokenB, tokenA);
    }

    function getReserves() external view returns (uint112, uint112, uint32) {
        return (reserve0, reserve1, blockTimestampLast);
    }

    function sync() external {
        uint256 balance0 = IERC20Balance(token0).balanceOf(address(this));
        uint256 balance1 = IERC20Balance(token1).balanceOf(address(this));
        require(
            balance0 <= type(uint112).max && balance1 <= type(uint112).max,
            "UniswapV2StylePair: overflow"
        );
        reserve0 = uint112(balance0);
        reserve1 = uint112(balance1);
        blockTimestampLast = uint32(block.timestamp % 2 ** 32);
        emit Sync(reserve0, reserve1);
    }
}
