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

/* A NETLINK_USERSOCK message of exactly size bytes, numbered seq. */
static int send_user(int tx, int rx, size_t size, __u32 seq, int flags)
{
	struct sockaddr_nl dst = { .nl_family = AF_NETLINK, .nl_pid = nl_portid(rx) };
	static unsigned char buf[BUF_SIZE];
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;

	if (size > sizeof(buf))
		return -EMSGSIZE;
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

/*
 * The geometries are in pages, so that each case breaks the same rule, or
 * none, on any page size.
 */
TEST(geometry_is_validated)
{
	const unsigned int page = nl_page_size();
	/* blocks of 32-byte frames whose frame count needs 33 bits */
	const unsigned int wrap_nr = (1ull << 32) / (page / 32) + 1;
	/* blocks of a page that make 1 GiB and a page */
	const unsigned int gib_nr = (1u << 30) / page + 1;
	const struct {
		struct nl_mmap_req req;
		int err;
		const char *why;
	} cases[] = {
		{ { page, 4, page / 2, 8 }, 0, "two frames per block" },
		{ { 2 * page, 2, page / 4 * 3, 4 }, 0, "blocks end in a gap" },
		{ { page, 3, NL_MMAP_HDRLEN, 3 * (page / NL_MMAP_HDRLEN) }, 0, "bare headers" },
		{ { 0, 1, page / 2, 2 }, EINVAL, "block size 0" },
		{ { page / 2 * 3, 1, page / 2, 3 }, EINVAL, "block size not a page multiple" },
		{ { page, 2, 16, 2 * (page / 16) }, EINVAL, "frame below the header size" },
		{ { page, 2, page / 2 - 2, 4 }, EINVAL, "frame size not aligned" },
		{ { page, 2, 2 * page, 2 }, EINVAL, "frame larger than a block" },
		{ { page, 4, page / 2, 7 }, EINVAL, "frame count mismatch" },
		{ { page, 0, page / 2, 2 }, EINVAL, "frames without blocks" },
		/* the u32 products match, the real ones do not (the ring
		 * also passes 1 GiB: this catches a check done in u32)
		 */
		{ { page, wrap_nr, 32, page / 32 * wrap_nr }, EINVAL, "count and size wrap u32" },
		/* a 32-bit kernel's lower limit refuses it too */
		{ { page, gib_nr, page, gib_nr }, EINVAL, "more than 1 GiB" },
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
	struct nl_mmap_req req;	/* two blocks of a page, four frames each */
	struct nl_ring ring;
	unsigned char buf[BUF_SIZE];
};

FIXTURE_SETUP(usersock)
{
	self->rx = nl_socket(NETLINK_USERSOCK);
	self->tx = nl_socket(NETLINK_USERSOCK);
	ASSERT_LE(0, self->rx);
	ASSERT_LE(0, self->tx);
	self->req = nl_ring_req(2, 4);
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

	ASSERT_EQ(0, nl_ring_setup(self->rx, &self->ring, &self->req));
	EXPECT_EQ(-1, setsockopt(self->rx, SOL_NETLINK, NETLINK_RX_RING, &off, sizeof(off)));
	EXPECT_EQ(EBUSY, errno);
	nl_ring_unmap(&self->ring);
	EXPECT_EQ(0, setsockopt(self->rx, SOL_NETLINK, NETLINK_RX_RING, &off, sizeof(off)));
}

TEST_F(usersock, mapping_must_be_exact)
{
	size_t size = nl_ring_size(&self->req), i;
	const size_t page = nl_page_size();
	void *map;

	ASSERT_EQ(0, setsockopt(self->rx, SOL_NETLINK, NETLINK_RX_RING, &self->req,
				sizeof(self->req)));
	EXPECT_EQ(EINVAL, map_errno(self->rx, size - page, MAP_SHARED, 0));
	EXPECT_EQ(EINVAL, map_errno(self->rx, size + page, MAP_SHARED, 0));
	EXPECT_EQ(EINVAL, map_errno(self->rx, size, MAP_SHARED, page));
	EXPECT_EQ(EINVAL, map_errno(self->rx, size, MAP_PRIVATE, 0));
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, self->rx, 0);
	ASSERT_TRUE(map != MAP_FAILED);
	for (i = 0; i < size; i++)
		ASSERT_EQ(0, ((unsigned char *)map)[i]) TH_LOG("fresh ring not zeroed at %zu", i);
	munmap(map, size);
}

TEST_F(usersock, copy_fallback_at_the_frame_boundary)
{
	const size_t room = nl_frame_room(&self->req);
	const size_t sizes[] = { 64, room, room + 1, 64 };
	const unsigned int expect[] = {
		NL_MMAP_STATUS_VALID, NL_MMAP_STATUS_VALID,
		NL_MMAP_STATUS_COPY, NL_MMAP_STATUS_VALID,
	};
	struct nl_mmap_stats stats;
	unsigned int i, status;
	ssize_t n;

	ASSERT_EQ(0, nl_ring_setup(self->rx, &self->ring, &self->req));
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
	const unsigned int frames = self->req.nm_frame_nr;
	unsigned int i, status, next = frames, accepted = 0;
	size_t size = nl_ring_size(&self->req);
	unsigned char *snapshot;
	int rcvbuf = 4096;
	ssize_t n;

	ASSERT_EQ(0, setsockopt(self->rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)));
	ASSERT_EQ(0, nl_ring_setup(self->rx, &self->ring, &self->req));
	for (i = 0; i < frames; i++)
		ASSERT_EQ(0, send_user(self->tx, self->rx, 64, i, 0));
	/* the kernel's head is frame 0: keep the first half with SKIP and
	 * canaries, so that the kernel steps over them, and the second half
	 * VALID, where it stops
	 */
	for (i = 0; i < frames / 2; i++) {
		struct nl_mmap_hdr *hdr = nl_ring_frame(&self->ring, i);

		memset((unsigned char *)hdr + NL_MMAP_HDRLEN, 0xc5,
		       nl_frame_room(&self->req));
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

/*
 * A link message's bytes without its IFLA_PAD attributes: on architectures
 * without efficient unaligned access, whether a 64-bit attribute needs one
 * depends on where the message lands in its skb.
 */
static size_t link_bytes(const struct nlmsghdr *nlh)
{
	const struct rtattr *rta = IFLA_RTA(NLMSG_DATA(nlh));
	size_t bytes = NLMSG_ALIGN(nlh->nlmsg_len);
	int len = IFLA_PAYLOAD(nlh);

	for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
		if (rta->rta_type == IFLA_PAD)
			bytes -= RTA_ALIGN(rta->rta_len);
	return bytes;
}

/* Count the messages of one dump and their bytes, fold their ifindexes. */
static int dump_links(int fd, struct nl_ring *ring, unsigned char *buf,
		      unsigned int *count, unsigned long *fold, size_t *bytes)
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
	*bytes = 0;
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
			*bytes += link_bytes(nlh);
			*fold = *fold * 31 + ((struct ifinfomsg *)NLMSG_DATA(nlh))->ifi_index;
		}
	}
}

TEST(link_dump_through_a_tiny_ring_equals_recv)
{
	/* one frame of a page */
	const struct nl_mmap_req tiny = nl_ring_req(1, 1);
	const size_t room = nl_frame_room(&tiny);
	unsigned int ring_count, plain_count;
	unsigned long ring_fold, plain_fold;
	size_t ring_bytes, plain_bytes;
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
	ASSERT_EQ(0, dump_links(fd, NULL, buf, &plain_count, &plain_fold,
				&plain_bytes));
	close(fd);

	fd = nl_socket(NETLINK_ROUTE);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, nl_ring_setup(fd, &ring, &tiny));
	ASSERT_EQ(0, dump_links(fd, &ring, buf, &ring_count, &ring_fold,
				&ring_bytes));
	EXPECT_EQ(65u, plain_count);
	EXPECT_EQ(plain_count, ring_count);
	EXPECT_EQ(plain_fold, ring_fold);
	EXPECT_EQ(plain_bytes, ring_bytes);
	ASSERT_EQ(0, ring_stats(fd, &stats));
	EXPECT_EQ(0ull, stats.nm_rx_copies);
	/* the one frame was written and released many times: at least once
	 * per frame's room of the dump, and more than once on any page size
	 * (a dump's skbs hold 32 KiB at most, the 65 links more)
	 */
	EXPECT_LE((ring_bytes + room - 1) / room, stats.nm_rx_frames);
	EXPECT_LT(1ull, stats.nm_rx_frames);
	nl_ring_unmap(&ring);
	close(fd);
	free(buf);
}

TEST_HARNESS_MAIN
