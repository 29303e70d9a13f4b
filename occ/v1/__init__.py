"""Generated gRPC code for ``proto/occ/v1/*.proto`` (built by ``scripts/gen_proto.sh``, never edited by hand)."""
