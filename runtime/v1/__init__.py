"""Generated gRPC/protobuf code; regenerate with `make proto`."""
