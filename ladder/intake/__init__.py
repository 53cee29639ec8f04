"""The alert webhook receiver behind ``ladder intake serve``.

One module per job, in the order a delivery meets them:

- :mod:`~ladder.intake.config`: ``runbooks/intake.yaml`` (runbooks to route to, each source's
  secret; a source without one is disabled);
- :mod:`~ladder.intake.signatures`: is the delivery from its source (HMAC, tokens, replays);
- :mod:`~ladder.intake.normalize`: each source's payload as alerts, an alert as an Incident;
- :mod:`~ladder.intake.app`: the Starlette app, every answer JSON, never a 5xx for bad input;
- :mod:`~ladder.intake.writer`: group commit of deliveries into
- :mod:`~ladder.intake.inbox`: the inbox tables in the ledger database (dedup by fingerprint
  within the runbook's window, replays, records for ``ladder intake list``);
- :mod:`~ladder.intake.dispatch`: creates the flow runs, retrying until Prefect has them;
- :mod:`~ladder.intake.server`: all of it under uvicorn in one process.

Importing this package imports none of them (the web stack loads only where it is served).
"""
