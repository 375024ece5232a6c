# shellcheck shell=bash
# The benchmark's network namespaces; sourced by guest.sh and profile.sh.

fresh_netns() { # name: a new netns with lo up (an old one of that name goes)
	ip netns del "$1" 2>/dev/null || true
	ip netns add "$1"
	ip -n "$1" link set lo up
}

# The nfqueue rules of the benchmark and the tests: UDP to port 9999 goes to
# queue 0 (nlbench's UDP_PORT).
QUEUE_RULES=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/nlmmap/queue.nft

nfq_netns() { # name: every UDP packet to port 9999 sent in it goes to queue 0
	fresh_netns "$1"
	ip netns exec "$1" nft -f "$QUEUE_RULES"
}

dump_netns() { # name routes: that many /32 routes on a dummy link
	local i
	fresh_netns "$1"
	ip -n "$1" link add d0 type dummy
	ip -n "$1" link set d0 up
	for ((i = 0; i < $2; i++)); do
		printf 'route add 10.%d.%d.%d/32 dev d0\n' $((i >> 16)) $(((i >> 8) & 255)) $((i & 255))
	done | ip -n "$1" -batch -
}
