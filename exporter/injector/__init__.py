"""The mutating admission webhook that injects the model-health sidecar into model pods.

``names`` holds every annotation/label key; ``identity`` reads the model from pod metadata;
``mutation`` decides and builds the mutated pod (pure); ``admission`` speaks AdmissionReview
v1 and JSONPatch; ``tls`` and ``https_server`` serve it over TLS with certificate reloads;
``service`` wires them into ``model-health injector``.
"""
