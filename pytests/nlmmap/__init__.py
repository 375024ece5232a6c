"""Reference user-space client for memory-mapped netlink (NETLINK_RX_RING/TX_RING)."""
