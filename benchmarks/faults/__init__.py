"""The fault suite (``python -m benchmarks.chaos``): its trials, fuzzed gRPC input, the table of what was done,
lost, duplicated and errored."""
