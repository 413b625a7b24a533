// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";

interface IMintable {
    function mint(address to, uint256 amount) external;
}

/// @title MockERC4626Vault
/// @notice Minimal ERC-4626 tokenized vault on OpenZeppelin's ERC20 shares; `accrueYield` mints
///         underlying into the vault so one share becomes worth more than one asset. Rounding
///         always favours the vault. Its share price is plain assets/supply (deploy.py mirrors
///         it), without the virtual shares of OpenZeppelin's ERC4626.
contract MockERC4626Vault is ERC20 {
    IERC20Metadata private immutable underlying;
    uint8 private immutable _decimals;

    event Deposit(address indexed sender, address indexed owner, uint256 assets, uint256 shares);
    event Withdraw(
        address indexed sender,
        address indexed receiver,
        address indexed owner,
        uint256 assets,
        uint256 shares
    );

    constructor(IERC20Metadata asset_, string memory name_, string memory symbol_)
        ERC20(name_, symbol_)
    {
        underlying = asset_;
        _decimals = asset_.decimals();
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function asset() external view returns (address) {
        return address(underlying);
    }

    function totalAssets() public view returns (uint256) {
        return underlying.balanceOf(address(this));
    }

    function convertToShares(uint256 assets) public view returns (uint256) {
        uint256 supply = totalSupply();
        return supply == 0 ? assets : (assets * supply) / totalAssets();
    }

    function convertToAssets(uint256 shares) public view returns (uint256) {
        uint256 supply = totalSupply();
        return supply == 0 ? shares : (shares * totalAssets()) / supply;
    }

    function maxDeposit(address) external pure returns (uint256) {
        return type(uint256).max;
    }

    function maxWithdraw(address owner) external view returns (uint256) {
        return convertToAssets(balanceOf(owner));
    }

    function maxRedeem(address owner) external view returns (uint256) {
        return balanceOf(owner);
    }

    function previewDeposit(uint256 assets) public view returns (uint256) {
        return convertToShares(assets);
    }

    function previewRedeem(uint256 shares) public view returns (uint256) {
        return convertToAssets(shares);
    }

    function deposit(uint256 assets, address receiver) external returns (uint256 shares) {
        shares = previewDeposit(assets);
        require(shares > 0, "ERC4626: zero shares");
        require(underlying.transferFrom(msg.sender, address(this), assets), "ERC4626: pull failed");
        _mint(receiver, shares);
        emit Deposit(msg.sender, receiver, assets, shares);
    }

    function redeem(uint256 shares, address receiver, address owner)
        external
        returns (uint256 assets)
    {
        if (msg.sender != owner) {
            _spendAllowance(owner, msg.sender, shares);
        }
        assets = previewRedeem(shares);
        _burn(owner, shares);
        require(underlying.transfer(receiver, assets), "ERC4626: push failed");
        emit Withdraw(msg.sender, receiver, owner, assets, shares);
    }

    /// @notice Simulates earned yield: mints `assets` of the (mintable) underlying into the vault.
    function accrueYield(uint256 assets) external {
        IMintable(address(underlying)).mint(address(this), assets);
    }
}
