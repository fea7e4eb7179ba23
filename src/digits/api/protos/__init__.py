"""The Open Inference Protocol's gRPC definition and its generated Python stubs (shipped, not built).

`open_inference_grpc.proto` is KServe's own file, unchanged (github.com/kserve/open-inference-protocol,
specification/protocol/open_inference_grpc.proto, Apache-2.0, its header kept): package `inference`,
service `GRPCInferenceService`, the service Triton and KServe serve. `open_inference_grpc_pb2.py` and
`open_inference_grpc_pb2_grpc.py` are generated from it and committed, so installing digits needs no
protoc and no grpcio-tools (only grpcio and protobuf, the `api` extra). Regenerate them after changing
the .proto, from the repository root:

    pip install grpcio-tools==1.73.1
    python -m grpc_tools.protoc -I src --python_out=src --grpc_python_out=src \\
        src/digits/api/protos/open_inference_grpc.proto

grpcio-tools 1.73.1 writes protobuf 6.31 code, which imports under protobuf 6.31 and later, 7.x
included (newer tools write code that needs a newer protobuf than tritonclient[grpc] allows).
tests/api/test_grpc.py checks that the shipped stubs match the .proto. The messages are registered
in protobuf's default pool under `inference.*`, as tritonclient.grpc's own copy is: one process
cannot import both (the server never imports tritonclient; clients never import these).
"""
