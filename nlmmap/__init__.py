"""Reference user-space client for memory-mapped netlink (NETLINK_RX_RING/TX_RING).

Used by the in-guest suites (pytests/), the demo (vm/guest/demo.py) and
its own model of the ring rules (model.py).  The pipeline imports the
checkout's copy (PYTHONPATH, pytests/pytest.ini); `pip install .` from the
project root installs it elsewhere (pyproject.toml).
"""
