"""The streaming core shared by both aggregator modes and the sidecar's edge mode.

Modules, in the order a record meets them:

- :mod:`~exporter.pipeline.decode` — a poll's Kafka messages → decoded tables (format per message);
- :mod:`~exporter.pipeline.model_versions` — which configured model version a record names;
- :mod:`~exporter.pipeline.dedup` — the same inference written twice is counted once;
- :mod:`~exporter.pipeline.fold` — decoded tables → per-model partial summaries;
- :mod:`~exporter.pipeline.buckets` — records → slot buckets (the fold's summaries);
- :mod:`~exporter.pipeline.class_scores` — a multiclass model's per-class score histograms (in the buckets);
- :mod:`~exporter.pipeline.column_fold` — a large batch's numeric columns folded over threads;
- :mod:`~exporter.pipeline.allocator` — freed temporaries kept for reuse (no page faults per chunk);
- :mod:`~exporter.pipeline.serving` — the serving counters' one rule (errors, latency);
- :mod:`~exporter.pipeline.partial` — what a fold produces: a model's partial summary, slot by slot;
- :mod:`~exporter.pipeline.owner` — the owned models: partials merged (lateness, counters, the join);
- :mod:`~exporter.pipeline.windows` — event-time buckets of mergeable summaries, per window;
- :mod:`~exporter.pipeline.packed` — how a window keeps its buckets: packed counts and sums;
- :mod:`~exporter.pipeline.request_keys` — request ids hashed to 64-bit keys, a column at a time (in the fold);
- :mod:`~exporter.pipeline.label_join` — ground truth joined to predictions by request key (in the merge);
- :mod:`~exporter.pipeline.key_index` — the join's hash table of keys, read and written per batch;
- :mod:`~exporter.pipeline.evaluation` — windows × reference profile → model results;
- :mod:`~exporter.pipeline.estimation` — a window's label-free performance estimate (in evaluation);
- :mod:`~exporter.pipeline.versions` — each version's predictions against its baseline version's;
- :mod:`~exporter.pipeline.snapshot` — the immutable snapshot a scrape and the drift report render;
- :mod:`~exporter.pipeline.summary_wire` — the summary message a sidecar in edge mode sends.
"""
