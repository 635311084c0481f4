"""Protobuf classes for the Open Inference Protocol's ``ModelInferRequest``/``Response``.

The messages are declared here field by field (the public ``inference`` package of the
KServe/Triton ``grpc_predict_v2.proto``, the schema Seldon Core v2 writes to Kafka)
rather than compiled from a ``.proto``: no code generator in the build, and no clash
with the same ``inference.*`` names that tritonclient or mlserver register in
protobuf's default pool — these live in a pool of their own.

>>> request = ModelInferRequest(model_name="iris", id="r-1")
>>> request.inputs.add(name="x", datatype="FP32", shape=[1, 2]).contents.fp32_contents.extend([1.0, 2.0])
>>> ModelInferRequest.FromString(request.SerializeToString()).inputs[0].contents.fp32_contents[:]
[1.0, 2.0]
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

_Field = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "inference"


def _field(
    name: str, number: int, kind: int, *, repeated: bool = False, message: str = "", oneof: int | None = None
) -> descriptor_pb2.FieldDescriptorProto:
    field = _Field(name=name, number=number, type=kind)
    field.label = _Field.LABEL_REPEATED if repeated else _Field.LABEL_OPTIONAL
    if message:
        field.type_name = f".{_PACKAGE}.{message}"
    if oneof is not None:
        field.oneof_index = oneof
    return field


def _parameters_map(owner: descriptor_pb2.DescriptorProto, number: int, owner_path: str) -> None:
    # A proto3 map<string, InferParameter> is a repeated nested entry message on the wire.
    entry = owner.nested_type.add(name="ParametersEntry")
    entry.options.map_entry = True
    entry.field.extend(
        [_field("key", 1, _Field.TYPE_STRING), _field("value", 2, _Field.TYPE_MESSAGE, message="InferParameter")]
    )
    owner.field.append(
        _field("parameters", number, _Field.TYPE_MESSAGE, repeated=True, message=f"{owner_path}.ParametersEntry")
    )


def _tensor(owner: descriptor_pb2.DescriptorProto, name: str, owner_path: str) -> None:
    tensor = owner.nested_type.add(name=name)
    tensor.field.extend(
        [
            _field("name", 1, _Field.TYPE_STRING),
            _field("datatype", 2, _Field.TYPE_STRING),
            _field("shape", 3, _Field.TYPE_INT64, repeated=True),
        ]
    )
    _parameters_map(tensor, 4, f"{owner_path}.{name}")
    tensor.field.append(_field("contents", 5, _Field.TYPE_MESSAGE, message="InferTensorContents"))


def _schema() -> descriptor_pb2.FileDescriptorProto:
    schema = descriptor_pb2.FileDescriptorProto(
        name="exporter/decoders/open_inference_protocol.proto", package=_PACKAGE, syntax="proto3"
    )

    parameter = schema.message_type.add(name="InferParameter")
    parameter.oneof_decl.add(name="parameter_choice")
    parameter.field.extend(
        [
            _field("bool_param", 1, _Field.TYPE_BOOL, oneof=0),
            _field("int64_param", 2, _Field.TYPE_INT64, oneof=0),
            _field("string_param", 3, _Field.TYPE_STRING, oneof=0),
            _field("double_param", 4, _Field.TYPE_DOUBLE, oneof=0),
            _field("uint64_param", 5, _Field.TYPE_UINT64, oneof=0),
        ]
    )

    contents = schema.message_type.add(name="InferTensorContents")
    contents.field.extend(
        [
            _field("bool_contents", 1, _Field.TYPE_BOOL, repeated=True),
            _field("int_contents", 2, _Field.TYPE_INT32, repeated=True),
            _field("int64_contents", 3, _Field.TYPE_INT64, repeated=True),
            _field("uint_contents", 4, _Field.TYPE_UINT32, repeated=True),
            _field("uint64_contents", 5, _Field.TYPE_UINT64, repeated=True),
            _field("fp32_contents", 6, _Field.TYPE_FLOAT, repeated=True),
            _field("fp64_contents", 7, _Field.TYPE_DOUBLE, repeated=True),
            _field("bytes_contents", 8, _Field.TYPE_BYTES, repeated=True),
        ]
    )

    request = schema.message_type.add(name="ModelInferRequest")
    _tensor(request, "InferInputTensor", "ModelInferRequest")
    requested = request.nested_type.add(name="InferRequestedOutputTensor")
    requested.field.append(_field("name", 1, _Field.TYPE_STRING))
    _parameters_map(requested, 2, "ModelInferRequest.InferRequestedOutputTensor")
    request.field.extend(
        [
            _field("model_name", 1, _Field.TYPE_STRING),
            _field("model_version", 2, _Field.TYPE_STRING),
            _field("id", 3, _Field.TYPE_STRING),
        ]
    )
    _parameters_map(request, 4, "ModelInferRequest")
    request.field.extend(
        [
            _field("inputs", 5, _Field.TYPE_MESSAGE, repeated=True, message="ModelInferRequest.InferInputTensor"),
            _field(
                "outputs", 6, _Field.TYPE_MESSAGE, repeated=True, message="ModelInferRequest.InferRequestedOutputTensor"
            ),
            _field("raw_input_contents", 7, _Field.TYPE_BYTES, repeated=True),
        ]
    )

    response = schema.message_type.add(name="ModelInferResponse")
    _tensor(response, "InferOutputTensor", "ModelInferResponse")
    response.field.extend(
        [
            _field("model_name", 1, _Field.TYPE_STRING),
            _field("model_version", 2, _Field.TYPE_STRING),
            _field("id", 3, _Field.TYPE_STRING),
        ]
    )
    _parameters_map(response, 4, "ModelInferResponse")
    response.field.extend(
        [
            _field("outputs", 5, _Field.TYPE_MESSAGE, repeated=True, message="ModelInferResponse.InferOutputTensor"),
            _field("raw_output_contents", 6, _Field.TYPE_BYTES, repeated=True),
        ]
    )
    return schema


def _message_classes() -> tuple[type[Message], ...]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_schema())
    names = ("ModelInferRequest", "ModelInferResponse", "InferTensorContents", "InferParameter")
    return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{n}")) for n in names)


ModelInferRequest, ModelInferResponse, InferTensorContents, InferParameter = _message_classes()
