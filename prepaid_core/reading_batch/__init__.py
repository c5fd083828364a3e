"""M5: the readings store's batch kernel, without Odoo: parse a batch (``parse``), judge it
against its meters' baselines (``judge``), write it as COPY text (``copy_text``), with the
named rows of ``rows`` and the threads of ``pipeline``.  The add-on's model loads the meters
and stores the rows (``prepaid.meter.reading._ingest``)."""
