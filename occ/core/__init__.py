"""The charging engine: requests and outcomes (no protobuf), batching, the engine, session supervision, tariff
following and the error table. Imports no edge (gRPC) and no CLI."""
