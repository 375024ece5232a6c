// SPDX-License-Identifier: GPL-2.0
/*
 * NETLINK_RX_RING: setup, mapping, delivery, COPY fallback and frame
 * ownership.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "../../kselftest_harness.h"
#include "nl_ring.h"

#define USER_TYPE	0x100
#define BUF_SIZE	65536

static const struct nl_mmap_req small_ring = {
	.nm_block_size = 4096, .nm_block_nr = 2,
	.nm_frame_size = 1024, .nm_frame_nr = 8,
};

/* A NETLINK_USERSOCK message of exactly size bytes, numbered seq. */
static int send_user(int tx, int rx, size_t size, __u32 seq, int flags)
{
	struct sockaddr_nl dst = { .nl_family = AF_NETLINK, .nl_pid = nl_portid(rx) };
	static unsigned char buf[BUF_SIZE];
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;

	memset(buf, seq & 0xff, size);
	nlh->nlmsg_len = size;
	nlh->nlmsg_type = USER_TYPE;
	nlh->nlmsg_flags = 0;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = 0;
	if (sendto(tx, buf, size, flags, (struct sockaddr *)&dst,
		   sizeof(dst)) != (ssize_t)size)
		return -errno;
	return 0;
}

static int ring_stats(int fd, struct nl_mmap_stats *stats)
{
	socklen_t len = sizeof(*stats);

	return getsockopt(fd, SOL_NETLINK, NETLINK_RING_STATS, stats, &len);
}

/* 0 if the mapping worked (it is undone), else its errno */
static int map_errno(int fd, size_t len, int flags, off_t off)
{
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, off);

	if (map == MAP_FAILED)
		return errno;
	munmap(map, len);
	return 0;
}

TEST(geometry_is_validated)
{
	static const struct {
		struct nl_mmap_req req;
		int err;
		const char *why;
	} cases[] = {
		{ { 4096, 4, 2048, 8 }, 0, "two frames per block" },
		{ { 8192, 2, 3000, 4 }, 0, "blocks end in a gap" },
		{ { 4096, 3, NL_MMAP_HDRLEN, 3 * (4096 / NL_MMAP_HDRLEN) }, 0, "bare headers" },
		{ { 0, 1, 2048, 2 }, EINVAL, "block size 0" },
		{ { 6000, 1, 2048, 2 }, EINVAL, "block size not a page multiple" },
		{ { 4096, 2, 16, 512 }, EINVAL, "frame below the header size" },
		{ { 4096, 2, 2046, 4 }, EINVAL, "frame size not aligned" },
		{ { 4096, 2, 8192, 2 }, EINVAL, "frame larger than a block" },
		{ { 4096, 4, 2048, 7 }, EINVAL, "frame count mismatch" },
		{ { 4096, 0, 2048, 2 }, EINVAL, "frames without blocks" },
		{ { 4096, (1u << 25) + 1, 32, 128 }, EINVAL, "count wraps 32 bits" },
		{ { 4096, 262145, 4096, 262145 }, EINVAL, "more than 1 GiB" },
	};
	struct nl_mmap_req got;
	socklen_t len;
	unsigned int i;
	int fd, ret;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		fd = nl_socket(NETLINK_ROUTE);
		ASSERT_LE(0, fd);
		ret = setsockopt(fd, SOL_NETLINK, NETLINK_RX_RING, &cases[i].req,
				 sizeof(cases[i].req));
		len = sizeof(got);
		ASSERT_EQ(0, getsockopt(fd, SOL_NETLINK, NETLINK_RX_RING, &got, &len));
		if (cases[i].err) {
			EXPECT_EQ(-1, ret) TH_LOG("%s", cases[i].why);
			EXPECT_EQ(cases[i].err, errno) TH_LOG("%s", cases[i].why);
			EXPECT_EQ(0u, got.nm_frame_nr) TH_LOG("%s", cases[i].why);
		} else {
			EXPECT_EQ(0, ret) TH_LOG("%s", cases[i].why);
			EXPECT_EQ(cases[i].req.nm_frame_nr, got.nm_frame_nr);
		}
		close(fd);
	}
}

FIXTURE(usersock) {
	int rx, tx;
	struct nl_ring ring;
	unsigned char buf[BUF_SIZE];
};

FIXTURE_SETUP(usersock)
{
	self->rx = nl_socket(NETLINK_USERSOCK);
	self->tx = nl_socket(NETLINK_USERSOCK);
	ASSERT_LE(0, self->rx);
	ASSERT_LE(0, self->tx);
	nl_ring_init(&self->ring);
}

FIXTURE_TEARDOWN(usersock)
{
	nl_ring_unmap(&self->ring);
	close(self->tx);
	close(self->rx);
}

TEST_F(usersock, ring_is_busy_while_mapped)
{
	struct nl_mmap_req off = {};

	ASSERT_EQ(0, nl_ring_setup(self->rx, &self->ring, &small_ring));
	EXPECT_EQ(-1, setsockopt(self->rx, SOL_NETLINK, NETLINK_RX_RING, &off, sizeof(off)));
	EXPECT_EQ(EBUSY, errno);
	nl_ring_unmap(&self->ring);
	EXPECT_EQ(0, setsockopt(self->rx, SOL_NETLINK, NETLINK_RX_RING, &off, sizeof(off)));
}

TEST_F(usersock, mapping_must_be_exact)
{
	size_t size = nl_ring_size(&small_ring), i;
	void *map;

	ASSERT_EQ(0, setsockopt(self->rx, SOL_NETLINK, NETLINK_RX_RING, &small_ring,
				sizeof(small_ring)));
	EXPECT_EQ(EINVAL, map_errno(self->rx, size - 4096, MAP_SHARED, 0));
	EXPECT_EQ(EINVAL, map_errno(self->rx, size + 4096, MAP_SHARED, 0));
	EXPECT_EQ(EINVAL, map_errno(self->rx, size, MAP_SHARED, 4096));
	EXPECT_EQ(EINVAL, map_errno(self->rx, size, MAP_PRIVATE, 0));
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, self->rx, 0);
	ASSERT_TRUE(map != MAP_FAILED);
	for (i = 0; i < size; i++)
		ASSERT_EQ(0, ((unsigned char *)map)[i]) TH_LOG("fresh ring not zeroed at %zu", i);
	munmap(map, size);
}

TEST_F(usersock, copy_fallback_at_the_frame_boundary)
{
	const size_t room = small_ring.nm_frame_size - NL_MMAP_HDRLEN;
	const size_t sizes[] = { 64, room, room + 1, 64 };
	const unsigned int expect[] = {
		NL_MMAP_STATUS_VALID, NL_MMAP_STATUS_VALID,
		NL_MMAP_STATUS_COPY, NL_MMAP_STATUS_VALID,
	};
	struct nl_mmap_stats stats;
	unsigned int i, status;
	ssize_t n;

	ASSERT_EQ(0, nl_ring_setup(self->rx, &self->ring, &small_ring));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, send_user(self->tx, self->rx, sizes[i], i, 0));
	for (i = 0; i < 4; i++) {
		n = nl_ring_read(self->rx, &self->ring, self->buf, sizeof(self->buf), &status);
		ASSERT_EQ((ssize_t)sizes[i], n);
		EXPECT_EQ(expect[i], status);
		EXPECT_EQ(i, ((struct nlmsghdr *)self->buf)->nlmsg_seq);
	}
	EXPECT_EQ(0, nl_ring_read(self->rx, &self->ring, self->buf, sizeof(self->buf), &status));
	ASSERT_EQ(0, ring_stats(self->rx, &stats));
	EXPECT_EQ(3ull, stats.nm_rx_frames);
	EXPECT_EQ(1ull, stats.nm_rx_copies);
}

TEST_F(usersock, held_frames_never_change)
{
	const unsigned int frames = small_ring.nm_frame_nr;
	unsigned int i, status, next = frames, accepted = 0;
	int rcvbuf = 4096;
	unsigned char *snapshot;
	size_t size = nl_ring_size(&small_ring);
	ssize_t n;

	ASSERT_EQ(0, setsockopt(self->rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)));
	ASSERT_EQ(0, nl_ring_setup(self->rx, &self->ring, &small_ring));
	for (i = 0; i < frames; i++)
		ASSERT_EQ(0, send_user(self->tx, self->rx, 64, i, 0));
	/* the kernel's head is frame 0: keep the first half with SKIP and
	 * canaries, so that the kernel steps over them, and the second half
	 * VALID, where it stops
	 */
	for (i = 0; i < frames / 2; i++) {
		struct nl_mmap_hdr *hdr = nl_ring_frame(&self->ring, i);

		memset((unsigned char *)hdr + NL_MMAP_HDRLEN, 0xc5,
		       small_ring.nm_frame_size - NL_MMAP_HDRLEN);
		nl_frame_set_status(hdr, NL_MMAP_STATUS_SKIP);
	}
	snapshot = malloc(size);
	ASSERT_FALSE(!snapshot) TH_LOG("no memory for the snapshot");
	memcpy(snapshot, self->ring.base, size);

	for (i = 0; i < 2000; i++)
		if (!send_user(self->tx, self->rx, 64, frames + i, MSG_DONTWAIT))
			accepted++;
	EXPECT_EQ(0, memcmp(snapshot, self->ring.base, size));
	free(snapshot);
	EXPECT_LT(0u, accepted);
	EXPECT_GT(2000u, accepted);

	/* the kernel stepped over the SKIP frames: it goes on at frames / 2 */
	for (i = 0; i < frames; i++)
		nl_frame_set_status(nl_ring_frame(&self->ring, i), NL_MMAP_STATUS_UNUSED);
	self->ring.head = frames / 2;
	while (nl_ring_wait(self->rx, 500)) {
		while ((n = nl_ring_read(self->rx, &self->ring, self->buf,
					 sizeof(self->buf), &status)) > 0) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)self->buf;

			/* accepted messages are consecutive: once refused, the
			 * receive buffer stayed full for the rest of the flood
			 */
			ASSERT_EQ(next, nlh->nlmsg_seq);
			next++;
		}
	}
	EXPECT_EQ(frames + accepted, next);
}

/* Count the messages of one dump and fold their ifindexes. */
static int dump_links(int fd, struct nl_ring *ring, unsigned char *buf,
		      unsigned int *count, unsigned long *fold)
{
	struct {
		struct nlmsghdr nlh;
		struct ifinfomsg ifm;
	} req = {
		.nlh = {
			.nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1,
		},
	};
	unsigned int status;
	ssize_t n;

	*count = 0;
	*fold = 0;
	if (send(fd, &req, sizeof(req), 0) != sizeof(req))
		return -errno;
	for (;;) {
		if (ring) {
			n = nl_ring_read(fd, ring, buf, BUF_SIZE, &status);
			if (n == 0) {
				if (!nl_ring_wait(fd, 10000))
					return -ETIMEDOUT;
				continue;
			}
		} else {
			n = recv(fd, buf, BUF_SIZE, 0);
		}
		if (n < 0)
			return n;
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nlh->nlmsg_type != RTM_NEWLINK)
				return -EPROTO;
			(*count)++;
			*fold = *fold * 31 + ((struct ifinfomsg *)NLMSG_DATA(nlh))->ifi_index;
		}
	}
}

TEST(link_dump_through_a_tiny_ring_equals_recv)
{
	const struct nl_mmap_req tiny = { 4096, 1, 4096, 1 };
	unsigned int ring_count, plain_count;
	unsigned long ring_fold, plain_fold;
	struct nl_mmap_stats stats;
	struct nl_ring ring;
	unsigned char *buf;
	FILE *ip;
	int fd, i;

	if (geteuid())
		SKIP(return, "needs root to create a network namespace");
	if (system("ip -V > /dev/null 2>&1"))
		SKIP(return, "needs ip from iproute2");
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	ip = popen("ip -batch -", "w");
	ASSERT_FALSE(!ip) TH_LOG("cannot run ip");
	for (i = 0; i < 64; i++)
		fprintf(ip, "link add d%d type dummy\n", i);
	ASSERT_EQ(0, pclose(ip));
	buf = malloc(BUF_SIZE);
	ASSERT_FALSE(!buf) TH_LOG("no memory for the dump");

	fd = nl_socket(NETLINK_ROUTE);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, dump_links(fd, NULL, buf, &plain_count, &plain_fold));
	close(fd);

	fd = nl_socket(NETLINK_ROUTE);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, nl_ring_setup(fd, &ring, &tiny));
	ASSERT_EQ(0, dump_links(fd, &ring, buf, &ring_count, &ring_fold));
	EXPECT_EQ(65u, plain_count);
	EXPECT_EQ(plain_count, ring_count);
	EXPECT_EQ(plain_fold, ring_fold);
	ASSERT_EQ(0, ring_stats(fd, &stats));
	EXPECT_EQ(0ull, stats.nm_rx_copies);
	/* the one frame was written and released many times */
	EXPECT_LT(4ull, stats.nm_rx_frames);
	nl_ring_unmap(&ring);
	close(fd);
	free(buf);
}

TEST_HARNESS_MAIN
