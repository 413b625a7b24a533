// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IERC721Receiver {
    function onERC721Received(address operator, address from, uint256 tokenId, bytes calldata data)
        external
        returns (bytes4);
}

/// @title MintableERC721
/// @notice Minimal enumerable ERC-721; anyone may mint (it is a test fixture). Token ids start at 1.
contract MintableERC721 {
    string public name;
    string public symbol;
    string private baseURI;
    uint256 public totalSupply;

    mapping(uint256 => address) private owners;
    mapping(address => uint256[]) private owned;
    mapping(uint256 => uint256) private ownedIndex;
    mapping(uint256 => address) public getApproved;
    mapping(address => mapping(address => bool)) public isApprovedForAll;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    constructor(string memory name_, string memory symbol_, string memory baseURI_) {
        name = name_;
        symbol = symbol_;
        baseURI = baseURI_;
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x01ffc9a7 // ERC-165
            || interfaceId == 0x80ac58cd // ERC-721
            || interfaceId == 0x5b5e139f // ERC-721 metadata
            || interfaceId == 0x780e9d63; // ERC-721 enumerable
    }

    function balanceOf(address owner) external view returns (uint256) {
        require(owner != address(0), "ERC721: zero address");
        return owned[owner].length;
    }

    function ownerOf(uint256 tokenId) public view returns (address owner) {
        owner = owners[tokenId];
        require(owner != address(0), "ERC721: nonexistent token");
    }

    function tokenOfOwnerByIndex(address owner, uint256 index) external view returns (uint256) {
        require(index < owned[owner].length, "ERC721: owner index out of bounds");
        return owned[owner][index];
    }

    /// @dev Ids are minted sequentially from 1 and never burnt, so the index maps directly.
    function tokenByIndex(uint256 index) external view returns (uint256) {
        require(index < totalSupply, "ERC721: global index out of bounds");
        return index + 1;
    }

    function tokenURI(uint256 tokenId) external view returns (string memory) {
        ownerOf(tokenId);
        return string.concat(baseURI, _toString(tokenId));
    }

    function mint(address to) external returns (uint256 tokenId) {
        require(to != address(0), "ERC721: mint to zero address");
        tokenId = ++totalSupply;
        _add(to, tokenId);
        emit Transfer(address(0), to, tokenId);
    }

    function approve(address to, uint256 tokenId) external {
        address owner = ownerOf(tokenId);
        require(msg.sender == owner || isApprovedForAll[owner][msg.sender], "ERC721: not allowed");
        getApproved[tokenId] = to;
        emit Approval(owner, to, tokenId);
    }

    function setApprovalForAll(address operator, bool approved) external {
        isApprovedForAll[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    function transferFrom(address from, address to, uint256 tokenId) public {
        require(ownerOf(tokenId) == from, "ERC721: wrong owner");
        require(to != address(0), "ERC721: transfer to zero address");
        require(
            msg.sender == from || getApproved[tokenId] == msg.sender
                || isApprovedForAll[from][msg.sender],
            "ERC721: not allowed"
        );
        delete getApproved[tokenId];
        _remove(from, tokenId);
        _add(to, tokenId);
        emit Transfer(from, to, tokenId);
    }

    function safeTransferFrom(address from, address to, uint256 tokenId) external {
        safeTransferFrom(from, to, tokenId, "");
    }

    function safeTransferFrom(address from, address to, uint256 tokenId, bytes memory data) public {
        transferFrom(from, to, tokenId);
        if (to.code.length > 0) {
            bytes4 ret = IERC721Receiver(to).onERC721Received(msg.sender, from, tokenId, data);
            require(ret == IERC721Receiver.onERC721Received.selector, "ERC721: unsafe recipient");
        }
    }

    function _add(address to, uint256 tokenId) private {
        owners[tokenId] = to;
        ownedIndex[tokenId] = owned[to].length;
        owned[to].push(tokenId);
    }

    function _remove(address from, uint256 tokenId) private {
        uint256[] storage list = owned[from];
        uint256 index = ownedIndex[tokenId];
        uint256 last = list[list.length - 1];
        list[index] = last;
        ownedIndex[last] = index;
        list.pop();
        delete ownedIndex[tokenId];
    }

    function _toString(uint256 value) private pure returns (string memory) {
        if (value == 0) {
            return "0";
        }
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) {
            digits++;
        }
        bytes memory buffer = new bytes(digits);
        for (; value != 0; value /= 10) {
            buffer[--digits] = bytes1(uint8(48 + (value % 10)));
        }
        return string(buffer);
    }
}
