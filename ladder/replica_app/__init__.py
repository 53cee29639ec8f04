"""Rung 6's parts: a debug replica of the app that only tagged requests reach.

- :mod:`~ladder.replica_app.vm`: on VMs behind nginx, the replica process and the route in
  nginx's map include (two leases: ``replica_process``, ``nginx_route``);
- :mod:`~ladder.replica_app.kubernetes`: on Kubernetes, a debug Deployment, its Service and a
  tagged-only HTTPRoute (or canary Ingress), one ``kubernetes_objects`` lease;
- :mod:`~ladder.replica_app.manifests`: those Kubernetes objects as values, no I/O.

The undo kinds live beside the connectors they use (``ladder.connectors.replica_app_leases``,
``ladder.connectors.kubernetes_leases``), where the janitor finds them.
"""
