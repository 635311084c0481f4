"""The conformance corpus: messages built the way each producer's own code builds them.

Every builder names the upstream file it follows, at the version read (kserve/kserve at
aaac4e2, 2026-08-21; SeldonIO/seldon-core at 7b77f8b, 2026-01-08, v2.9+). The point is to
test our decoders against what really arrives — headers, keys, framing, bodies — not against
what our own encoder would write:

- :mod:`~tests.exporter.decoders.corpus.kserve` — KServe's agent (payload logger) as it posts
  to an HTTP sink, and as Knative's KafkaSink stores those events on Kafka;
- :mod:`~tests.exporter.decoders.corpus.seldon` — Seldon Core 2's pipeline and model gateways
  on the model and pipeline topics, plain or in Confluent's schema-registry framing;
- :mod:`~tests.exporter.decoders.corpus.triton` — the Open Inference Protocol protobuf classes
  Triton's client ships (``tritonclient.grpc.service_pb2``), an encoder independent of ours.
"""
