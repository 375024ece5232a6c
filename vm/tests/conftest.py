"""Host-side tests of the harness in vm/: no VM, seconds.  vm/pytest.ini puts
vm/ on the import path, so the tests import the harness package."""
