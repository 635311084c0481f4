"""Scale-out: several aggregator replicas in one group, the same metrics as one, exactly once.

``kafka.mode: scale_out`` splits the aggregator into two stages joined by a Kafka topic, the
way Kafka Streams repartitions:

- **stage 1** (:mod:`~exporter.aggregator.scaleout.stage1`, group ``kafka.group_id``): any replica folds
  any partition of the (unkeyed) predictions and labels topics into partial summaries and
  publishes them re-keyed by model onto ``model-health-summaries``
  (:mod:`~exporter.aggregator.scaleout.wire`, :mod:`~exporter.aggregator.scaleout.routing`);
- **stage 2** (:mod:`~exporter.aggregator.scaleout.stage2`, group ``<group_id>-merge``): the replica
  holding a summaries partition owns every model routed there — merges its partials, joins
  its labels, evaluates it and exports it;
- **join shards** (:mod:`~exporter.aggregator.scaleout.join_shards`, ``kafka.join_shards``):
  stage 1 sends a model's label-join rows by request key to partitions of their own, whose
  holders join them and report performance slots and counts to the model's owner.

Exactly-once across both stages rests on progress stored in the output: every partial names
the source offset range it covers, stage 1 records a flush's end before producing it and
re-publishes that exact range after a crash, and stage 2 skips ranges it has merged.
:mod:`~exporter.aggregator.scaleout.service` runs both stages in one process.
"""
