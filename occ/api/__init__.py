"""The gRPC edge: the Charging and Admin servicers, wire conversion, interceptors and the server wiring."""
