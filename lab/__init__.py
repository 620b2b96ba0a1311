"""The virtual rack: hospital.cloud deployed on three systemd hosts on this machine (see lab/README.md).

``python -m lab up|down|summary|converge|reliability`` (``make lab``, ``make lab-destroy``,
``make lab-reliability``); ``python -m lab.rack up|down|status NAME`` builds a bare rack. The test
bed (tests/testbed) and the integration tests build their racks with ``lab.rack``.
"""
