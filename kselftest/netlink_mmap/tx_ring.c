// SPDX-License-Identifier: GPL-2.0
/*
 * NETLINK_TX_RING: batches sent with one empty send, the return value and
 * error rules, POLLOUT, acks in the RX ring, and writers racing the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/netlink.h>

#include "../../kselftest_harness.h"
#include "nl_ring.h"

#define USER_TYPE	0x100
#define BUF_SIZE	65536
#define ROUNDS		300

/* Two blocks of a page, eight frames each */
static struct nl_mmap_req tx_ring_req(void)
{
	return nl_ring_req(2, 8);
}

/* A NETLINK_USERSOCK message of exactly size bytes, numbered seq. */
static void user_msg(unsigned char *buf, size_t size, __u32 seq)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;

	memset(buf, seq & 0xff, size);
	nlh->nlmsg_len = size;
	nlh->nlmsg_type = USER_TYPE;
	nlh->nlmsg_flags = 0;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = 0;
}

static int ring_stats(int fd, struct nl_mmap_stats *stats)
{
	socklen_t len = sizeof(*stats);

	return getsockopt(fd, SOL_NETLINK, NETLINK_RING_STATS, stats, &len);
}

/* The seq of the next datagram waiting on a plain socket, -1 for none. */
static long next_seq(int fd, unsigned char *buf)
{
	ssize_t n = recv(fd, buf, BUF_SIZE, MSG_DONTWAIT);

	if (n < (ssize_t)sizeof(struct nlmsghdr))
		return -1;
	return ((struct nlmsghdr *)buf)->nlmsg_seq;
}

FIXTURE(usersock) {
	int rx, tx;
	struct sockaddr_nl dst;
	struct nl_mmap_req req;
	struct nl_ring ring;
	unsigned char buf[BUF_SIZE];
};

FIXTURE_SETUP(usersock)
{
	self->rx = nl_socket(NETLINK_USERSOCK);
	self->tx = nl_socket(NETLINK_USERSOCK);
	ASSERT_LE(0, self->rx);
	ASSERT_LE(0, self->tx);
	memset(&self->dst, 0, sizeof(self->dst));
	self->dst.nl_family = AF_NETLINK;
	self->dst.nl_pid = nl_portid(self->rx);
	self->req = tx_ring_req();
	nl_ring_init(&self->ring);
}

FIXTURE_TEARDOWN(usersock)
{
	nl_ring_unmap(&self->ring);
	close(self->tx);
	close(self->rx);
}

TEST_F(usersock, empty_send_without_a_tx_ring_is_enodata)
{
	EXPECT_EQ(-ENODATA, nl_ring_send(self->tx, &self->dst, 0));
	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));
	/* with a ring and no VALID frame: nothing to send */
	EXPECT_EQ(0, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(-1, next_seq(self->rx, self->buf));
}

TEST_F(usersock, batch_arrives_in_order)
{
	const size_t room = nl_frame_room(&self->req);
	const size_t sizes[] = { 16, 17, 100, 256, room, 40, 64, 20 };
	struct nl_mmap_stats stats;
	ssize_t total = 0;
	unsigned int i;

	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		user_msg(self->buf, sizes[i], i + 1);
		ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, sizes[i]));
		total += sizes[i];
	}
	EXPECT_EQ(total, nl_ring_send(self->tx, &self->dst, 0));
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		ssize_t n = recv(self->rx, self->buf, BUF_SIZE, MSG_DONTWAIT);

		ASSERT_EQ((ssize_t)sizes[i], n);
		EXPECT_EQ(i + 1, ((struct nlmsghdr *)self->buf)->nlmsg_seq);
	}
	for (i = 0; i < self->req.nm_frame_nr; i++)
		EXPECT_EQ((unsigned int)NL_MMAP_STATUS_UNUSED,
			  nl_frame_status(nl_ring_frame(&self->ring, i)));
	ASSERT_EQ(0, ring_stats(self->tx, &stats));
	EXPECT_EQ(ARRAY_SIZE(sizes), stats.nm_tx_frames);
	EXPECT_EQ(0ull, stats.nm_tx_errors);
}

TEST_F(usersock, malformed_frame_is_einval_released_and_reported)
{
	struct nl_mmap_hdr *bad;

	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));
	user_msg(self->buf, 64, 1);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 64));
	bad = nl_ring_frame(&self->ring, self->ring.head);
	user_msg(self->buf, 64, 2);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 64));
	bad->nm_len = nl_frame_room(&self->req) + 4;
	user_msg(self->buf, 64, 3);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 64));

	EXPECT_EQ(-EINVAL, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(1, next_seq(self->rx, self->buf));
	EXPECT_EQ(-1, next_seq(self->rx, self->buf));
	/* the bad frame is the last one released; the next is still VALID */
	EXPECT_EQ((unsigned int)NL_MMAP_STATUS_UNUSED, nl_frame_status(bad));
	EXPECT_EQ((unsigned int)NL_MMAP_STATUS_VALID,
		  nl_frame_status(nl_ring_frame(&self->ring, 2)));
	EXPECT_EQ(64, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(3, next_seq(self->rx, self->buf));
}

TEST_F(usersock, undefined_status_is_einval_and_left_alone)
{
	struct nl_mmap_hdr *hdr;

	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));
	hdr = nl_ring_frame(&self->ring, 0);
	user_msg(self->buf, 32, 1);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 32));
	nl_frame_set_status(hdr, 0xdeadbeef);
	EXPECT_EQ(-EINVAL, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(0xdeadbeef, nl_frame_status(hdr));
	nl_frame_set_status(hdr, NL_MMAP_STATUS_VALID);
	EXPECT_EQ(32, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(1, next_seq(self->rx, self->buf));
}

/*
 * After sent frames, the bytes first: the next call reports the frame
 * with the undefined status, so the last frame released is never blamed.
 * POLLOUT lets a sender that polls before each send make that call.
 */
TEST_F(usersock, undefined_status_after_sent_frames_returns_the_bytes_first)
{
	struct nl_mmap_hdr *hdr;

	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));
	user_msg(self->buf, 32, 1);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 32));
	user_msg(self->buf, 32, 2);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 32));
	hdr = nl_ring_frame(&self->ring, 2);
	nl_frame_set_status(hdr, 0xdeadbeef);
	EXPECT_EQ(64, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(1, nl_ring_writable(self->tx, 0));
	EXPECT_EQ(-EINVAL, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(0xdeadbeef, nl_frame_status(hdr));
	EXPECT_EQ(1, next_seq(self->rx, self->buf));
	EXPECT_EQ(2, next_seq(self->rx, self->buf));
}

TEST_F(usersock, pollout_while_the_head_frame_is_unused_or_valid)
{
	struct nl_mmap_hdr *hdr;

	EXPECT_EQ(1, nl_ring_writable(self->tx, 0));
	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));
	EXPECT_EQ(1, nl_ring_writable(self->tx, 0));
	/* user space holds the head frame while it writes it */
	hdr = nl_ring_frame(&self->ring, 0);
	nl_frame_set_status(hdr, NL_MMAP_STATUS_RESERVED);
	EXPECT_EQ(0, nl_ring_writable(self->tx, 0));
	nl_frame_set_status(hdr, NL_MMAP_STATUS_UNUSED);
	/* a VALID head: a send has work, whether or not its receiver is full */
	user_msg(self->buf, 32, 1);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 32));
	EXPECT_EQ(1, nl_ring_writable(self->tx, 0));
	EXPECT_EQ(32, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(1, nl_ring_writable(self->tx, 0));
	EXPECT_EQ(1, next_seq(self->rx, self->buf));
}

TEST(acks_arrive_in_the_rx_ring)
{
	/* four blocks of a page, four frames each */
	const struct nl_mmap_req rx_req = nl_ring_req(4, 4);
	const struct nl_mmap_req tx_req = tx_ring_req();
	struct nl_ring rx, tx;
	unsigned char buf[1024];
	unsigned int status, seq;
	struct nlmsghdr noop = {
		.nlmsg_len = sizeof(noop), .nlmsg_type = NLMSG_NOOP,
		.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
	};
	int fd = nl_socket(NETLINK_ROUTE);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, nl_rings_setup(fd, &rx, &rx_req, &tx, &tx_req));
	for (seq = 1; seq <= 8; seq++) {
		noop.nlmsg_seq = seq;
		ASSERT_EQ(0, nl_ring_put(&tx, &noop, sizeof(noop)));
	}
	EXPECT_EQ(8 * (ssize_t)sizeof(noop), nl_ring_send(fd, NULL, 0));
	for (seq = 1; seq <= 8; seq++) {
		struct nlmsgerr *err = NLMSG_DATA((struct nlmsghdr *)buf);

		ASSERT_LT(0, nl_ring_read(fd, &rx, buf, sizeof(buf), &status));
		EXPECT_EQ((unsigned int)NL_MMAP_STATUS_VALID, status);
		EXPECT_EQ(NLMSG_ERROR, ((struct nlmsghdr *)buf)->nlmsg_type);
		EXPECT_EQ(0, err->error);
		EXPECT_EQ(seq, err->msg.nlmsg_seq);
	}
	nl_ring_unmap(&rx);
	close(fd);
}

struct scribbler {
	struct nl_mmap_req req;
	unsigned char *base;
	int stop;		/* read and written with __atomic */
	unsigned int seed;
};

/*
 * Rewrite nm_len, nlmsg_len and payload of random TX frames.  Not the
 * status: a status that stops the batch (undefined, RESERVED) at the
 * kernel's head frame could stop every round, and the status rules have
 * their own tests.
 */
static void scribble(struct scribbler *s)
{
	struct nl_ring view = { .req = s->req, .base = s->base };
	const __u32 room = nl_frame_room(&s->req);
	const __u32 lens[] = { 0, 8, 16, room, room + 4, 0xffffffff };

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		unsigned int i = rand_r(&s->seed) % s->req.nm_frame_nr;
		struct nl_mmap_hdr *hdr = nl_ring_frame(&view, i);
		unsigned char *msg = (unsigned char *)hdr + NL_MMAP_HDRLEN;

		switch (rand_r(&s->seed) % 3) {
		case 0:
			hdr->nm_len = lens[rand_r(&s->seed) % ARRAY_SIZE(lens)];
			break;
		case 1:
			((struct nlmsghdr *)msg)->nlmsg_len = rand_r(&s->seed) % (2 * room);
			break;
		default:
			msg[rand_r(&s->seed) % room] = rand_r(&s->seed);
		}
	}
}

static void *scribble_thread(void *arg)
{
	scribble(arg);
	return NULL;
}

/*
 * What the kernel delivers is what it checked: whole messages that fit a
 * frame, however the frames change while it sends.
 */
TEST_F(usersock, racing_writers_cannot_change_what_is_sent)
{
	const ssize_t room = nl_frame_room(&self->req);
	struct scribbler threads[2] = {};
	unsigned int i, seq = 0, delivered = 0;
	struct nl_mmap_stats stats;
	int rcvbuf = 4 << 20;
	pthread_t tid[2];
	ssize_t n;

	ASSERT_EQ(0, setsockopt(self->rx, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)));
	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));

	for (i = 0; i < 2; i++) {
		threads[i].req = self->req;
		threads[i].base = self->ring.base;
		threads[i].seed = i + 1;
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, scribble_thread, &threads[i]));
	}

	for (int round = 0; round < ROUNDS; round++) {
		for (i = 0; i < self->req.nm_frame_nr; i++) {
			struct nl_mmap_hdr *hdr = nl_ring_frame(&self->ring, i);
			size_t size = 16 + 4 * (++seq % 100);

			user_msg((unsigned char *)hdr + NL_MMAP_HDRLEN, size, seq);
			hdr->nm_len = size;
			nl_frame_set_status(hdr, NL_MMAP_STATUS_VALID);
		}
		n = nl_ring_send(self->tx, &self->dst, MSG_DONTWAIT);
		if (n < 0)
			ASSERT_TRUE(n == -EINVAL || n == -EMSGSIZE) TH_LOG("send: %zd", n);
		while ((n = recv(self->rx, self->buf, BUF_SIZE, MSG_DONTWAIT)) >= 0) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)self->buf;
			ssize_t left = n;

			ASSERT_GE(room, n);
			while (NLMSG_OK(nlh, left))
				nlh = NLMSG_NEXT(nlh, left);
			/* nothing left over: whole messages only */
			ASSERT_EQ(0, left) TH_LOG("datagram of %zd bytes", n);
			delivered++;
		}
	}

	for (i = 0; i < 2; i++) {
		__atomic_store_n(&threads[i].stop, 1, __ATOMIC_RELAXED);
		pthread_join(tid[i], NULL);
	}
	/* every round found the head frame VALID: the kernel took at least
	 * one frame per round, sent or released with an error
	 */
	ASSERT_EQ(0, ring_stats(self->tx, &stats));
	EXPECT_LE((__u64)ROUNDS, stats.nm_tx_frames + stats.nm_tx_errors);
	TH_LOG("%u datagrams delivered, %llu frames sent, %llu refused",
	       delivered, (unsigned long long)stats.nm_tx_frames,
	       (unsigned long long)stats.nm_tx_errors);

	/* the ring still works: one clean lap from wherever the kernel is */
	for (i = 0; i < self->req.nm_frame_nr; i++)
		nl_frame_set_status(nl_ring_frame(&self->ring, i), NL_MMAP_STATUS_UNUSED);
	while (recv(self->rx, self->buf, BUF_SIZE, MSG_DONTWAIT) >= 0)
		;
	for (i = 0; i < self->req.nm_frame_nr; i++) {
		struct nl_mmap_hdr *hdr = nl_ring_frame(&self->ring, i);

		user_msg((unsigned char *)hdr + NL_MMAP_HDRLEN, 64, i);
		hdr->nm_len = 64;
		nl_frame_set_status(hdr, NL_MMAP_STATUS_VALID);
	}
	EXPECT_EQ(64 * (ssize_t)self->req.nm_frame_nr,
		  nl_ring_send(self->tx, &self->dst, 0));
	for (i = 0; i < self->req.nm_frame_nr; i++)
		EXPECT_EQ(64, recv(self->rx, self->buf, BUF_SIZE, MSG_DONTWAIT));
}

/*
 * Frames go with the rights of the task that sends them, so only the
 * address space that mapped the ring may write them: a forked child (one
 * that dropped privileges, say) gets no mapping, cannot map the ring
 * itself and cannot send from it, and the parent's frames stay its own.
 * Nor can the parent hand the mapping down: MADV_DOFORK is refused for
 * a VM_DONTEXPAND mapping.
 */
TEST_F(usersock, a_forked_child_cannot_write_or_send_the_tx_ring)
{
	size_t len = nl_ring_size(&self->req);
	unsigned char vec[16];
	int status;
	pid_t child;

	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));
	user_msg(self->buf, 64, 1);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 64));
	EXPECT_EQ(-1, madvise(self->ring.map, len, MADV_DOFORK));
	EXPECT_EQ(EINVAL, errno);

	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		void *map;

		/* 1: the parent's mapping is not in the child */
		if (mincore(self->ring.map, len, vec) == 0 || errno != ENOMEM)
			_exit(1);
		/* 2: nor can the child map the ring */
		map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			   self->tx, 0);
		if (map != MAP_FAILED || errno != EPERM)
			_exit(2);
		/* 3: nor send what the parent wrote */
		if (nl_ring_send(self->tx, &self->dst, 0) != -EPERM)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child check %d", WEXITSTATUS(status));

	/* the parent's frame is still VALID and its own to send */
	EXPECT_EQ(64, nl_ring_send(self->tx, &self->dst, 0));
	EXPECT_EQ(1, next_seq(self->rx, self->buf));
	EXPECT_EQ(-1, next_seq(self->rx, self->buf));
}

/*
 * Once the owner's mapping is gone (daemon(): the parent exits), another
 * process that has the socket still cannot map the old TX ring (the old
 * owner may keep its pages pinned), but it may set up a new one, with
 * fresh pages, and own that: the frame the old owner left VALID is gone,
 * and the old owner can no longer send.
 */
TEST_F(usersock, a_new_tx_ring_gets_a_new_owner)
{
	size_t len = nl_ring_size(&self->req);
	int status;
	pid_t child;

	ASSERT_EQ(0, nl_rings_setup(self->tx, NULL, NULL, &self->ring, &self->req));
	user_msg(self->buf, 64, 1);
	ASSERT_EQ(0, nl_ring_put(&self->ring, self->buf, 64));
	nl_ring_unmap(&self->ring);

	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		struct nl_mmap_hdr *hdr;
		unsigned char *map;

		map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			   self->tx, 0);
		if (map != MAP_FAILED || errno != EPERM)
			_exit(1);
		if (setsockopt(self->tx, SOL_NETLINK, NETLINK_TX_RING, &self->req,
			       sizeof(self->req)))
			_exit(2);
		map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			   self->tx, 0);
		if (map == MAP_FAILED)
			_exit(3);
		hdr = (struct nl_mmap_hdr *)map;
		/* a new ring: the old owner's VALID frame is not in it */
		if (hdr->nm_status != NL_MMAP_STATUS_UNUSED || hdr->nm_len)
			_exit(4);
		user_msg((unsigned char *)hdr + NL_MMAP_HDRLEN, 48, 2);
		hdr->nm_len = 48;
		nl_frame_set_status(hdr, NL_MMAP_STATUS_VALID);
		if (nl_ring_send(self->tx, &self->dst, 0) != 48)
			_exit(5);
		_exit(0);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("child check %d", WEXITSTATUS(status));
	/* only the new owner's message arrived */
	EXPECT_EQ(2, next_seq(self->rx, self->buf));
	EXPECT_EQ(-1, next_seq(self->rx, self->buf));
	/* the ring is the child's: the old owner can no longer send */
	EXPECT_EQ(-EPERM, nl_ring_send(self->tx, &self->dst, 0));
}

TEST_HARNESS_MAIN
