"""The retraining relay: Alertmanager webhook in, signed retraining request out.

``model-health relay --config FILE`` takes Alertmanager's notifications on
``POST /v1/alertmanager`` and turns each firing retrain-recommended alert into one signed
(Standard Webhooks) request to a retraining target — a plain webhook, an Argo Events event
source, a Kubeflow Pipelines run or a GitHub ``repository_dispatch`` — at most once per alert
and once per cooldown per model, retried with backoff, and durable across restarts.

Modules, in the order a notification meets them: ``endpoint`` (HTTP, auth, limits),
``payload`` (the notification's shape), ``events`` (which alerts matter, per model),
``intake`` and ``store`` (dedup, cooldown and the pending delivery, committed before the 200),
``worker`` with ``retry``, ``targets``, ``signing`` and ``sender`` (the attempts), ``stats``
(metrics), ``credentials`` (secret files) and ``service`` (wiring).
"""
