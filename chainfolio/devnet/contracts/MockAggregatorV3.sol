// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title MockAggregatorV3
/// @notice Chainlink-style price feed (AggregatorV3Interface) whose answer tests can set,
///         including an arbitrary `updatedAt` for staleness checks.
contract MockAggregatorV3 {
    struct Round {
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
        bool exists;
    }

    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 4;
    uint80 public latestRound;
    mapping(uint80 => Round) private rounds;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    constructor(uint8 decimals_, string memory description_, int256 initialAnswer) {
        decimals = decimals_;
        description = description_;
        updateAnswer(initialAnswer);
    }

    /// @notice Starts a new round with `answer`, updated now.
    function updateAnswer(int256 answer) public {
        updateRoundData(latestRound + 1, answer, block.timestamp, block.timestamp);
    }

    /// @notice Writes a round verbatim and makes it the latest one.
    function updateRoundData(uint80 roundId, int256 answer, uint256 updatedAt, uint256 startedAt)
        public
    {
        latestRound = roundId;
        rounds[roundId] = Round(answer, startedAt, updatedAt, true);
        emit AnswerUpdated(answer, roundId, updatedAt);
    }

    /// @notice Backdates (or postdates) the latest round, e.g. to make the feed stale.
    function setUpdatedAt(uint256 updatedAt) external {
        rounds[latestRound].updatedAt = updatedAt;
    }

    function getRoundData(uint80 roundId)
        public
        view
        returns (uint80, int256 answer, uint256 startedAt, uint256 updatedAt, uint80)
    {
        Round memory r = rounds[roundId];
        require(r.exists, "No data present");
        return (roundId, r.answer, r.startedAt, r.updatedAt, roundId);
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return getRoundData(latestRound);
    }

    function latestAnswer() external view returns (int256) {
        return rounds[latestRound].answer;
    }

    function latestTimestamp() external view returns (uint256) {
        return rounds[latestRound].updatedAt;
    }
}
