/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small reference client for memory-mapped netlink rings: set up the RX
 * and TX rings and map them with one mmap() (RX first), walk frames in
 * order (frame i lives in block i / frames_per_block, so a block may end
 * in a gap), read an RX frame in place or, for COPY, with recv(), and hand
 * it back; fill TX frames and send them all with one empty send.
 */
#ifndef NL_RING_H
#define NL_RING_H

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/netlink.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct nl_ring {
	struct nl_mmap_req req;
	unsigned char *base;	/* this ring's frames; MAP_FAILED when unmapped */
	unsigned char *map;	/* the mapping if this ring owns it */
	size_t map_len;
	unsigned int head;	/* next frame user space reads or fills */
};

/* A bound netlink socket of the protocol, or -1. */
static inline int nl_socket(int protocol)
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW, protocol);

	if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline __u32 nl_portid(int fd)
{
	struct sockaddr_nl addr;
	socklen_t len = sizeof(addr);

	return getsockname(fd, (struct sockaddr *)&addr, &len) ? 0 : addr.nl_pid;
}

static inline size_t nl_ring_size(const struct nl_mmap_req *req)
{
	return (size_t)req->nm_block_size * req->nm_block_nr;
}

/* Blocks are whole pages: 4 KiB on x86_64, 64 KiB on some arm64 kernels. */
static inline unsigned int nl_page_size(void)
{
	return getpagesize();
}

/*
 * block_nr blocks of one page, each cut into frames_per_block frames: the
 * frame count is the same on every page size, the frame size grows with
 * the page.  frames_per_block must be a power of two (the frame size
 * stays NL_MMAP_MSG_ALIGNMENT aligned) and leave a frame no smaller than
 * NL_MMAP_HDRLEN.
 */
static inline struct nl_mmap_req nl_ring_req(unsigned int block_nr,
					     unsigned int frames_per_block)
{
	struct nl_mmap_req req = {
		.nm_block_size = nl_page_size(),
		.nm_block_nr = block_nr,
		.nm_frame_nr = block_nr * frames_per_block,
	};

	req.nm_frame_size = req.nm_block_size / frames_per_block;
	return req;
}

/* The most message bytes one frame holds */
static inline unsigned int nl_frame_room(const struct nl_mmap_req *req)
{
	return req->nm_frame_size - NL_MMAP_HDRLEN;
}

static inline void nl_ring_init(struct nl_ring *ring)
{
	memset(ring, 0, sizeof(*ring));
	ring->base = MAP_FAILED;
	ring->map = MAP_FAILED;
}

/*
 * setsockopt(NETLINK_RX_RING / NETLINK_TX_RING) for each ring asked for
 * (NULL: none), then one mmap() of both, RX first.  The RX ring owns the
 * mapping if there is one, else the TX ring.  0 or -errno.
 */
static inline int nl_rings_setup(int fd, struct nl_ring *rx,
				 const struct nl_mmap_req *rx_req,
				 struct nl_ring *tx,
				 const struct nl_mmap_req *tx_req)
{
	size_t rx_size = rx ? nl_ring_size(rx_req) : 0;
	size_t tx_size = tx ? nl_ring_size(tx_req) : 0;
	struct nl_ring *owner = rx ? rx : tx;
	unsigned char *map;

	if (rx) {
		nl_ring_init(rx);
		rx->req = *rx_req;
		if (setsockopt(fd, SOL_NETLINK, NETLINK_RX_RING, rx_req, sizeof(*rx_req)))
			return -errno;
	}
	if (tx) {
		nl_ring_init(tx);
		tx->req = *tx_req;
		if (setsockopt(fd, SOL_NETLINK, NETLINK_TX_RING, tx_req, sizeof(*tx_req)))
			return -errno;
	}
	map = mmap(NULL, rx_size + tx_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	owner->map = map;
	owner->map_len = rx_size + tx_size;
	if (rx)
		rx->base = map;
	if (tx)
		tx->base = map + rx_size;
	return 0;
}

/* An RX ring alone; 0 or -errno */
static inline int nl_ring_setup(int fd, struct nl_ring *ring,
				const struct nl_mmap_req *req)
{
	return nl_rings_setup(fd, ring, req, NULL, NULL);
}

static inline void nl_ring_unmap(struct nl_ring *ring)
{
	if (ring->map != MAP_FAILED)
		munmap(ring->map, ring->map_len);
	ring->map = MAP_FAILED;
	ring->base = MAP_FAILED;
}

static inline struct nl_mmap_hdr *nl_ring_frame(const struct nl_ring *ring,
						unsigned int i)
{
	unsigned int per_block = ring->req.nm_block_size / ring->req.nm_frame_size;

	return (struct nl_mmap_hdr *)(ring->base +
		(size_t)(i / per_block) * ring->req.nm_block_size +
		(size_t)(i % per_block) * ring->req.nm_frame_size);
}

/*
 * The kernel publishes a frame with release semantics; read the status
 * with acquire before the frame.  (R2: an RX frame's data; T2: a TX frame
 * the kernel handed back, before writing it again.)  The labels are those
 * of net/netlink/ring.c.
 */
static inline unsigned int nl_frame_status(struct nl_mmap_hdr *hdr)
{
	return __atomic_load_n(&hdr->nm_status, __ATOMIC_ACQUIRE);
}

/*
 * RX: hand a frame back (UNUSED) or keep it (SKIP) once done reading it (R3).
 * TX: publish a filled frame (VALID) after its message and nm_len (T1).
 */
static inline void nl_frame_set_status(struct nl_mmap_hdr *hdr,
				       unsigned int status)
{
	__atomic_store_n(&hdr->nm_status, status, __ATOMIC_RELEASE);
}

/* The frame at our head if it is VALID or COPY, stepping over SKIP. */
static inline struct nl_mmap_hdr *nl_ring_next(struct nl_ring *ring)
{
	unsigned int i, status;
	struct nl_mmap_hdr *hdr;

	for (i = 0; i < ring->req.nm_frame_nr; i++) {
		hdr = nl_ring_frame(ring, ring->head);
		status = nl_frame_status(hdr);
		if (status == NL_MMAP_STATUS_VALID || status == NL_MMAP_STATUS_COPY)
			return hdr;
		if (status != NL_MMAP_STATUS_SKIP)
			return NULL;
		ring->head = (ring->head + 1) % ring->req.nm_frame_nr;
	}
	return NULL;
}

/*
 * Move the RX ring on: a zero-length read makes the kernel fill the
 * frames we released from its backlog and continue a running dump.  It
 * takes no message; poll() moves nothing.  0, or -errno of a pending
 * socket error (ENOBUFS after an overrun).
 */
static inline int nl_ring_kick(int fd)
{
	return recv(fd, NULL, 0, MSG_DONTWAIT) < 0 ? -errno : 0;
}

/*
 * Copy the next frame's messages (a COPY frame's from recv()) into buf
 * and release the frame; when none waits, move the ring on and look once
 * more.  Returns their length, 0 when no frame waits, or -errno.
 */
static inline ssize_t nl_ring_read(int fd, struct nl_ring *ring, void *buf,
				   size_t len, unsigned int *status)
{
	struct nl_mmap_hdr *hdr = nl_ring_next(ring);
	ssize_t n;

	*status = NL_MMAP_STATUS_UNUSED;
	if (!hdr) {
		n = nl_ring_kick(fd);
		if (n < 0)
			return n;
		hdr = nl_ring_next(ring);
	}
	if (!hdr)
		return 0;
	*status = nl_frame_status(hdr);
	if (*status == NL_MMAP_STATUS_COPY) {
		n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n < 0)
			return -errno;
	} else {
		n = hdr->nm_len < len ? hdr->nm_len : len;
		memcpy(buf, (unsigned char *)hdr + NL_MMAP_HDRLEN, n);
	}
	nl_frame_set_status(hdr, NL_MMAP_STATUS_UNUSED);
	ring->head = (ring->head + 1) % ring->req.nm_frame_nr;
	return n;
}

/* poll() for POLLIN: 1 if it came, 0 on timeout. */
static inline int nl_ring_wait(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) > 0 && (pfd.revents & POLLIN);
}

/*
 * Fill the TX frame at our head with len bytes of whole netlink messages
 * and mark it VALID.  0, -EMSGSIZE if they do not fit a frame, or -ENOBUFS
 * when the head frame is not UNUSED (the kernel has not sent it yet).
 */
static inline int nl_ring_put(struct nl_ring *ring, const void *msg,
			      unsigned int len)
{
	struct nl_mmap_hdr *hdr = nl_ring_frame(ring, ring->head);

	if (len > nl_frame_room(&ring->req))
		return -EMSGSIZE;
	if (nl_frame_status(hdr) != NL_MMAP_STATUS_UNUSED)
		return -ENOBUFS;
	memcpy((unsigned char *)hdr + NL_MMAP_HDRLEN, msg, len);
	hdr->nm_len = len;
	nl_frame_set_status(hdr, NL_MMAP_STATUS_VALID);
	ring->head = (ring->head + 1) % ring->req.nm_frame_nr;
	return 0;
}

/*
 * Send every VALID TX frame, to dst or, for NULL, the connected peer or
 * the kernel.  The bytes sent, 0 when no frame was VALID, or -errno of the
 * frame that ended the batch (it is the last frame the call released).  A
 * frame that would block or met a signal stays VALID: the bytes of the
 * frames before it, or -EAGAIN / -EINTR when there were none.  A head
 * frame with an undefined status is left alone the same way (-EINVAL
 * when no frame went before it).
 */
static inline ssize_t nl_ring_send(int fd, const struct sockaddr_nl *dst,
				   int flags)
{
	ssize_t n = sendto(fd, NULL, 0, flags, (const struct sockaddr *)dst,
			   dst ? sizeof(*dst) : 0);

	return n < 0 ? -errno : n;
}

/*
 * poll() for POLLOUT: 1 if the kernel's TX head frame is UNUSED, VALID or
 * holds an undefined status (the next send reports it).
 */
static inline int nl_ring_writable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	return poll(&pfd, 1, timeout_ms) > 0 && (pfd.revents & POLLOUT);
}

#endif
