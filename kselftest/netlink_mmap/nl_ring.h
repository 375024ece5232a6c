/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small reference client for memory-mapped netlink RX rings: set up and
 * map a ring, walk its frames in order (frame i lives in block
 * i / frames_per_block, so a block may end in a gap), read a frame in
 * place or, for COPY, with recv(), and hand it back.
 */
#ifndef NL_RING_H
#define NL_RING_H

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/netlink.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct nl_ring {
	struct nl_mmap_req req;
	unsigned char *base;	/* the mapping; MAP_FAILED when unmapped */
	unsigned int head;	/* next frame user space reads */
};

static inline size_t nl_ring_size(const struct nl_mmap_req *req)
{
	return (size_t)req->nm_block_size * req->nm_block_nr;
}

/* setsockopt(NETLINK_RX_RING) and mmap(); 0 or -errno */
static inline int nl_ring_setup(int fd, struct nl_ring *ring,
				const struct nl_mmap_req *req)
{
	ring->base = MAP_FAILED;
	ring->head = 0;
	ring->req = *req;
	if (setsockopt(fd, SOL_NETLINK, NETLINK_RX_RING, req, sizeof(*req)))
		return -errno;
	ring->base = mmap(NULL, nl_ring_size(req), PROT_READ | PROT_WRITE,
			  MAP_SHARED, fd, 0);
	return ring->base == MAP_FAILED ? -errno : 0;
}

static inline void nl_ring_unmap(struct nl_ring *ring)
{
	if (ring->base != MAP_FAILED)
		munmap(ring->base, nl_ring_size(&ring->req));
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

/* The kernel publishes a frame with release semantics; read with acquire. */
static inline unsigned int nl_frame_status(struct nl_mmap_hdr *hdr)
{
	return __atomic_load_n(&hdr->nm_status, __ATOMIC_ACQUIRE);
}

/* Hand a frame back (UNUSED) or keep it (SKIP) once done reading it. */
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
 * Copy the next frame's messages (a COPY frame's from recv()) into buf
 * and release the frame.  Returns their length, 0 when no frame waits,
 * or -errno.
 */
static inline ssize_t nl_ring_read(int fd, struct nl_ring *ring, void *buf,
				   size_t len, unsigned int *status)
{
	struct nl_mmap_hdr *hdr = nl_ring_next(ring);
	ssize_t n;

	*status = NL_MMAP_STATUS_UNUSED;
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

#endif
