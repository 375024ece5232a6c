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

# The forwarding workload: a router netns between two others, with veth
# pairs, its forward chain queueing UDP to port 9999 (nlbench's
# NLBENCH_FORWARD="$2 $3 $FORWARD_DST"), so that an accepted packet is
# forwarded, as through an IPS, instead of delivered to a local socket.
# The links' MTU takes the largest payload whole (no fragments).
FORWARD_DST=10.99.2.2
fwd_netns() { # router src dst
	local router=$1 src=$2 dst=$3
	fresh_netns "$router"
	fresh_netns "$src"
	fresh_netns "$dst"
	ip link add veth0 netns "$router" mtu 65535 type veth peer name eth0 netns "$src" mtu 65535
	ip link add veth1 netns "$router" mtu 65535 type veth peer name eth0 netns "$dst" mtu 65535
	ip -n "$router" addr add 10.99.1.1/24 dev veth0
	ip -n "$router" addr add 10.99.2.1/24 dev veth1
	ip -n "$src" addr add 10.99.1.2/24 dev eth0
	ip -n "$dst" addr add "$FORWARD_DST/24" dev eth0
	ip -n "$router" link set veth0 up
	ip -n "$router" link set veth1 up
	ip -n "$src" link set eth0 up
	ip -n "$dst" link set eth0 up
	ip -n "$src" route add default via 10.99.1.1
	ip -n "$dst" route add default via 10.99.2.1
	ip netns exec "$router" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$router" nft -f - <<-'RULES'
		table inet nlbfwd {
			chain forward {
				type filter hook forward priority 0; policy accept;
				udp dport 9999 queue num 0
			}
		}
	RULES
	# the neighbours resolved before the first burst: packets that wait
	# for ARP beyond its small queue are dropped
	ip netns exec "$src" ping -q -c 1 -W 5 "$FORWARD_DST" >/dev/null
}
