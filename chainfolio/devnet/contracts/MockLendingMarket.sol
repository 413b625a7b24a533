// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IERC20Minimal {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title MockLendingMarket
/// @notice Minimal money market: per-user supplied and borrowed base units per token, no
///         interest and no collateral checks (positions are what tests set up, nothing more).
contract MockLendingMarket {
    mapping(address => mapping(address => uint256)) public supplied;
    mapping(address => mapping(address => uint256)) public borrowed;

    event Supply(address indexed user, address indexed token, uint256 amount);
    event Withdraw(address indexed user, address indexed token, uint256 amount);
    event Borrow(address indexed user, address indexed token, uint256 amount);
    event Repay(address indexed user, address indexed token, uint256 amount);

    function supply(address token, uint256 amount) external {
        require(IERC20Minimal(token).transferFrom(msg.sender, address(this), amount), "pull failed");
        supplied[msg.sender][token] += amount;
        emit Supply(msg.sender, token, amount);
    }

    function withdraw(address token, uint256 amount) external {
        supplied[msg.sender][token] -= amount;
        require(IERC20Minimal(token).transfer(msg.sender, amount), "push failed");
        emit Withdraw(msg.sender, token, amount);
    }

    /// @notice Lends `amount` of `token` out of the market's own liquidity.
    function borrow(address token, uint256 amount) external {
        borrowed[msg.sender][token] += amount;
        require(IERC20Minimal(token).transfer(msg.sender, amount), "push failed");
        emit Borrow(msg.sender, token, amount);
    }

    function repay(address token, uint256 amount) external {
        require(IERC20Minimal(token).transferFrom(msg.sender, address(this), amount), "pull failed");
        borrowed[msg.sender][token] -= amount;
        emit Repay(msg.sender, token, amount);
    }
}
