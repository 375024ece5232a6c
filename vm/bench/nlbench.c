// SPDX-License-Identifier: GPL-2.0
/*
 * nlbench: one benchmark point, socket path or ring path, printed as one
 * JSON line.  Runs in the guest (vm/bench/guest.sh sets up the netns, the
 * nftables rule and the routes); time is the guest's CLOCK_MONOTONIC, which
 * under QEMU -icount counts executed instructions.
 *
 *   nlbench nfq    NFQPATH VERDICT SIZE PACKETS FLOWS MODE   nfqueue 0, UDP to :9999
 *   nlbench dump   PATH                               RTM_GETROUTE dump
 *   nlbench events PATH MEMORY COUNT                  route events to a listener
 *   nlbench copy   SIZE PACKETS                       memcpy and copy_to_user()
 *                                                     of the same bytes
 *
 * PATH is sock or ring.  NFQPATH is how the nfqueue daemon reads packets
 * and sends verdicts, what a user could pick without the rings first:
 *
 *   sock    recv() per packet; per-packet verdicts in one sendmsg() each
 *           (libnetfilter_queue's default)
 *   packed  recv() per packet; a read round's verdicts in one sendmsg()
 *   mmsg    recvmmsg() of up to a round's packets per call; verdicts packed
 *   uring   io_uring: a multishot recv into a ring of provided buffers, the
 *           round's verdicts packed into one send, submitted with the call
 *           that also collects the next completions (DEFER_TASKRUN)
 *   ring    the RX ring's frames read in place; verdicts in one TX frame
 *
 * VERDICT is each (one NFQNL_MSG_VERDICT per packet) or batch (one
 * NFQNL_MSG_VERDICT_BATCH per read round, at most BATCH_MAX packets); MODE
 * is flood or drain (see bench_nfq()).  With NLBENCH_FORWARD="SRC DST ADDR"
 * the packets are forwarded instead of sent locally: the generators run in
 * netns SRC and send to ADDR, which this netns routes to netns DST (its
 * forward chain queues them, vm/bench/netns.sh); the sink listens in DST.
 * Every path checks that packet ids come in order, each once, and that
 * every packet got its verdict.  The ring client is the selftests'
 * nl_ring.h (kselftest/netlink_mmap/ of this project).
 */
#define _GNU_SOURCE	/* recvmmsg(), setns() */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/rtnetlink.h>

#include "nl_ring.h"

#define UDP_PORT	9999
#define BATCH_MAX	64
#define RECV_BUF	(256 * 1024)
#define IDLE_MS		5000	/* guest ms without a packet: the rest is lost */

static unsigned char rbuf[RECV_BUF];

static void die(const char *what)
{
	fprintf(stderr, "nlbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: nlbench nfq sock|packed|mmsg|uring|ring each|batch SIZE PACKETS FLOWS flood|drain\n"
		"       nlbench dump sock|ring\n"
		"       nlbench events sock|ring MEMORY COUNT\n"
		"       nlbench copy SIZE PACKETS\n");
	exit(2);
}

static long arg_long(const char *s)
{
	char *end;
	long v = strtol(s, &end, 0);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "nlbench: not a non-negative number: '%s'\n", s);
		exit(2);
	}
	return v;
}

static int arg_ring(const char *s)
{
	if (!strcmp(s, "ring"))
		return 1;
	if (strcmp(s, "sock"))
		usage();
	return 0;
}

enum nfq_path { NFQ_SOCK, NFQ_PACKED, NFQ_MMSG, NFQ_URING, NFQ_RING };
static const char *const nfq_paths[] = { "sock", "packed", "mmsg", "uring", "ring" };

static int arg_nfq_path(const char *s)
{
	unsigned int i;

	for (i = 0; i < sizeof(nfq_paths) / sizeof(nfq_paths[0]); i++)
		if (!strcmp(s, nfq_paths[i]))
			return i;
	usage();
	return 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* user + system time of this process (and its waited-for children) */
struct cost {
	uint64_t user_ns, sys_ns;
};

static struct cost cost_now(int who)
{
	struct rusage ru;
	struct cost c;

	getrusage(who, &ru);
	c.user_ns = ru.ru_utime.tv_sec * 1000000000ull + ru.ru_utime.tv_usec * 1000ull;
	c.sys_ns = ru.ru_stime.tv_sec * 1000000000ull + ru.ru_stime.tv_usec * 1000ull;
	return c;
}

/* busy time of all CPUs from /proc/stat (user nice system irq softirq), ns */
static uint64_t cpu_busy_ns(void)
{
	unsigned long long v[7] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");

	if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu",
			 &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) != 7)
		die("/proc/stat");
	fclose(f);
	return (v[0] + v[1] + v[2] + v[5] + v[6]) * (1000000000ull / hz);
}

static void set_rcvbuf(int fd, int bytes)
{
	/* the kernel doubles the value (bookkeeping overhead) */
	bytes /= 2;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)))
		die("SO_RCVBUFFORCE");
}

/* ---- nfnetlink_queue ---------------------------------------------------- */

struct msgbuf {
	unsigned char data[16384];
	size_t len;
};

static struct nlmsghdr *msg_start(struct msgbuf *b, int type, int flags, int queue)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)(b->data + b->len);
	struct nfgenmsg *nfg = NLMSG_DATA(nlh);

	nlh->nlmsg_len = NLMSG_LENGTH(sizeof(*nfg));
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = 0;
	nlh->nlmsg_pid = 0;
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(queue);
	return nlh;
}

static void msg_attr(struct nlmsghdr *nlh, int type, const void *data, int len)
{
	struct nlattr *nla = (struct nlattr *)((unsigned char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));

	nla->nla_type = type;
	nla->nla_len = NLA_HDRLEN + len;
	memcpy((unsigned char *)nla + NLA_HDRLEN, data, len);
	nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(nla->nla_len);
}

static void msg_end(struct msgbuf *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void nfq_send(int fd, struct msgbuf *b)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	if (sendto(fd, b->data, b->len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		die("sendto nfqueue");
	b->len = 0;
}

/* Bind queue 0 (acked, so errors show), copy whole packets, room for all. */
static void nfq_bind(int fd, int packets)
{
	struct nfqnl_msg_config_params params = {
		.copy_range = htonl(0xffff), .copy_mode = NFQNL_COPY_PACKET,
	};
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
	__u32 maxlen = htonl(packets + 1024);
	int type = NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_CONFIG;
	struct msgbuf b = { .len = 0 };
	struct nlmsghdr *nlh;
	int i;

	nlh = msg_start(&b, type, NLM_F_ACK, 0);
	msg_attr(nlh, NFQA_CFG_CMD, &cmd, sizeof(cmd));
	msg_end(&b, nlh);
	nlh = msg_start(&b, type, NLM_F_ACK, 0);
	msg_attr(nlh, NFQA_CFG_PARAMS, &params, sizeof(params));
	msg_attr(nlh, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof(maxlen));
	msg_end(&b, nlh);
	nfq_send(fd, &b);
	for (i = 0; i < 2; i++) {
		struct nlmsgerr *err;
		ssize_t n = recv(fd, rbuf, sizeof(rbuf), 0);

		nlh = (struct nlmsghdr *)rbuf;
		if (n < (ssize_t)NLMSG_LENGTH(sizeof(*err)) || nlh->nlmsg_type != NLMSG_ERROR)
			die("nfqueue config ack");
		err = NLMSG_DATA(nlh);
		if (err->error) {
			errno = -err->error;
			die("nfqueue config");
		}
	}
}

static void verdict_add(struct msgbuf *b, int type, __u32 id)
{
	struct nfqnl_msg_verdict_hdr vh = { .verdict = htonl(NF_ACCEPT), .id = htonl(id) };
	struct nlmsghdr *nlh = msg_start(b, NFNL_SUBSYS_QUEUE << 8 | type, 0, 0);

	msg_attr(nlh, NFQA_VERDICT_HDR, &vh, sizeof(vh));
	msg_end(b, nlh);
}

/* The packet id of an NFQNL_MSG_PACKET message, 0 for anything else. */
static __u32 packet_id(const struct nlmsghdr *nlh)
{
	const struct nlattr *nla;
	int len;

	if (nlh->nlmsg_type != (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET))
		return 0;
	nla = (const struct nlattr *)((const unsigned char *)NLMSG_DATA(nlh) +
				      NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	len = nlh->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	while (len >= NLA_HDRLEN && nla->nla_len >= NLA_HDRLEN && nla->nla_len <= len) {
		if ((nla->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
			const struct nfqnl_msg_packet_hdr *ph = (const void *)(nla + 1);

			return ntohl(ph->packet_id);
		}
		len -= NLA_ALIGN(nla->nla_len);
		nla = (const struct nlattr *)((const unsigned char *)nla + NLA_ALIGN(nla->nla_len));
	}
	return 0;
}

/*
 * The messages of an RX frame, read in place; a COPY frame's come from
 * recv() into rbuf.  The frame stays the reader's until frame_release().
 */
static const unsigned char *frame_messages(int fd, struct nl_mmap_hdr *hdr, size_t *len)
{
	ssize_t n;

	if (nl_frame_status(hdr) != NL_MMAP_STATUS_COPY) {
		*len = hdr->nm_len;
		return (unsigned char *)hdr + NL_MMAP_HDRLEN;
	}
	n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
	if (n < 0)
		die("recv COPY frame");
	*len = n;
	return rbuf;
}

/* Hand the frame at the ring's head back to the kernel and move on. */
static void frame_release(struct nl_ring *rx)
{
	nl_frame_set_status(nl_ring_frame(rx, rx->head), NL_MMAP_STATUS_UNUSED);
	rx->head = (rx->head + 1) % rx->req.nm_frame_nr;
}

/* io_uring path: provided buffers for the multishot recv */
#define URING_BUFS	256	/* a power of two */
#define URING_BGID	1
#define URING_SENDS	8
enum { URING_RECV = 1, URING_SEND };

struct nfq_state {
	int fd, path, batch;
	struct nl_ring rx, tx;	/* ring path only */
	struct msgbuf out;	/* verdicts not sent yet */
	long done;		/* packets verdicted */
	__u32 last_id, batch_id;
	size_t bufsize;		/* one packet with its headers (mmsg, uring) */
	unsigned char *bufs;	/* BATCH_MAX (mmsg) or URING_BUFS of them */
	struct mmsghdr *mmsg;	/* mmsg path */
	struct iovec *iov;
	struct io_uring uring;	/* uring path */
	struct io_uring_buf_ring *br;
	struct msgbuf sent[URING_SENDS];	/* what the sends in flight read */
	unsigned int sends_issued;
	int recv_armed, sends;	/* sends not reaped yet */
};

/* Queue the verdict(s) for the packets in one buffer of messages. */
static void nfq_handle(struct nfq_state *s, const unsigned char *data, size_t len)
{
	const struct nlmsghdr *nlh = (const void *)data;
	__u32 id;

	for (; NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
		id = packet_id(nlh);
		if (!id)
			continue;
		if (id != s->last_id + 1 && s->last_id) {
			fprintf(stderr, "nlbench: packet id %u after %u\n", id, s->last_id);
			exit(1);
		}
		s->last_id = id;
		s->done++;
		if (s->batch)
			continue;
		verdict_add(&s->out, NFQNL_MSG_VERDICT, id);
		/* libnetfilter_queue's way: one sendmsg() per verdict */
		if (s->path == NFQ_SOCK)
			nfq_send(s->fd, &s->out);
	}
}

/* @n receive buffers of one packet with its headers, faulted in now, as a
 * running daemon's are: not in the timed part (mmsg, uring).
 */
static void bufs_setup(struct nfq_state *s, long size, int n)
{
	s->bufsize = (size + 1024 + 4095) & ~4095L;
	s->bufs = malloc(n * s->bufsize);
	if (!s->bufs)
		die("receive buffers");
	memset(s->bufs, 0, n * s->bufsize);
}

/* ---- io_uring path ---- */

static void uring_arm_recv(struct nfq_state *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->uring);

	if (!sqe)
		die("io_uring SQ full");
	io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	io_uring_sqe_set_data64(sqe, URING_RECV);
	s->recv_armed = 1;
}

static void uring_setup(struct nfq_state *s, long size)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		.cq_entries = 4 * URING_BUFS,
	};
	int err, i;

	p.flags |= IORING_SETUP_CQSIZE;
	err = io_uring_queue_init_params(64, &s->uring, &p);
	if (err) {
		errno = -err;
		die("io_uring_queue_init_params");
	}
	bufs_setup(s, size, URING_BUFS);
	if (posix_memalign((void **)&s->br, 4096, URING_BUFS * sizeof(struct io_uring_buf)))
		die("io_uring buffer ring");
	io_uring_buf_ring_init(s->br);
	err = io_uring_register_buf_ring(&s->uring, &(struct io_uring_buf_reg){
		.ring_addr = (unsigned long)s->br, .ring_entries = URING_BUFS, .bgid = URING_BGID,
	}, 0);
	if (err) {
		errno = -err;
		die("io_uring_register_buf_ring");
	}
	for (i = 0; i < URING_BUFS; i++)
		io_uring_buf_ring_add(s->br, s->bufs + i * s->bufsize, s->bufsize, i,
				      io_uring_buf_ring_mask(URING_BUFS), i);
	io_uring_buf_ring_advance(s->br, URING_BUFS);
}

/* The round's verdicts in one send; it goes with the call into the kernel
 * that also collects the next recv completions.  A netlink send to the
 * kernel completes within its submit; URING_SENDS buffers in rotation keep
 * each one's bytes until its completion is reaped, whatever the order.
 */
static void uring_send(struct nfq_state *s)
{
	struct msgbuf *sent = &s->sent[s->sends_issued++ % URING_SENDS];
	struct io_uring_sqe *sqe;
	int err;

	if (s->sends >= URING_SENDS)
		die("io_uring: verdict sends did not complete");
	memcpy(sent->data, s->out.data, s->out.len);
	sent->len = s->out.len;
	s->out.len = 0;
	sqe = io_uring_get_sqe(&s->uring);
	if (!sqe)
		die("io_uring SQ full");
	io_uring_prep_send(sqe, s->fd, sent->data, sent->len, 0);
	io_uring_sqe_set_data64(sqe, URING_SEND);
	s->sends++;
	err = io_uring_submit_and_get_events(&s->uring);
	if (err < 0) {
		errno = -err;
		die("io_uring submit");
	}
}

/* Up to @budget packets from the completions already posted. */
static void uring_round(struct nfq_state *s, long budget)
{
	long before = s->done;
	struct io_uring_cqe *cqe;
	unsigned int bid;

	if (!s->recv_armed) {
		uring_arm_recv(s);
		if (io_uring_submit_and_get_events(&s->uring) < 0)
			die("io_uring submit recv");
	}
	while (s->done - before < budget && !io_uring_peek_cqe(&s->uring, &cqe)) {
		if (cqe->user_data == URING_SEND) {
			if (cqe->res < 0) {
				errno = -cqe->res;
				die("io_uring send of verdicts");
			}
			s->sends--;
		} else if (cqe->res < 0) {
			/* out of buffers: the recv ends, packets stay queued */
			if (cqe->res != -ENOBUFS) {
				errno = -cqe->res;
				die("io_uring recv");
			}
			s->recv_armed = 0;
		} else {
			if (!(cqe->flags & IORING_CQE_F_BUFFER))
				die("io_uring recv without a buffer");
			bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			nfq_handle(s, s->bufs + bid * s->bufsize, cqe->res);
			io_uring_buf_ring_add(s->br, s->bufs + bid * s->bufsize, s->bufsize, bid,
					      io_uring_buf_ring_mask(URING_BUFS), 0);
			io_uring_buf_ring_advance(s->br, 1);
			if (!(cqe->flags & IORING_CQE_F_MORE))
				s->recv_armed = 0;
		}
		io_uring_cqe_seen(&s->uring, cqe);
	}
}

/* Wait up to @ms for a completion; 0 on a timeout. */
static int uring_wait(struct nfq_state *s, int ms)
{
	struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	struct io_uring_cqe *cqe;
	int err;

	if (!s->recv_armed)
		uring_arm_recv(s);
	err = io_uring_submit_and_wait_timeout(&s->uring, &cqe, 1, &ts, NULL);
	if (err == -ETIME)
		return 0;
	if (err < 0) {
		errno = -err;
		die("io_uring wait");
	}
	return 1;
}

/* ---- mmsg path ---- */

static void mmsg_setup(struct nfq_state *s, long size)
{
	int i;

	bufs_setup(s, size, BATCH_MAX);
	s->mmsg = calloc(BATCH_MAX, sizeof(*s->mmsg));
	s->iov = calloc(BATCH_MAX, sizeof(*s->iov));
	if (!s->mmsg || !s->iov)
		die("recvmmsg headers");
	for (i = 0; i < BATCH_MAX; i++) {
		s->iov[i].iov_base = s->bufs + i * s->bufsize;
		s->iov[i].iov_len = s->bufsize;
		s->mmsg[i].msg_hdr.msg_iov = &s->iov[i];
		s->mmsg[i].msg_hdr.msg_iovlen = 1;
	}
}

/* One recvmmsg() of up to @budget packets; 0 when none waited. */
static int mmsg_read(struct nfq_state *s, long budget)
{
	int n, i;

	n = recvmmsg(s->fd, s->mmsg, budget, MSG_DONTWAIT, NULL);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		die("recvmmsg nfqueue");
	for (i = 0; i < n; i++) {
		if (s->mmsg[i].msg_hdr.msg_flags & MSG_TRUNC)
			die("recvmmsg: a packet larger than its buffer");
		nfq_handle(s, s->iov[i].iov_base, s->mmsg[i].msg_len);
	}
	return n;
}

static void nfq_flush(struct nfq_state *s)
{
	if (s->batch && s->last_id != s->batch_id) {
		verdict_add(&s->out, NFQNL_MSG_VERDICT_BATCH, s->last_id);
		s->batch_id = s->last_id;
	}
	if (!s->out.len)
		return;
	if (s->path == NFQ_URING) {
		uring_send(s);
		return;
	}
	if (s->path != NFQ_RING) {
		nfq_send(s->fd, &s->out);
		return;
	}
	while (nl_ring_put(&s->tx, s->out.data, s->out.len) == -ENOBUFS)
		nl_ring_writable(s->fd, 1000);
	s->out.len = 0;
	if (nl_ring_send(s->fd, NULL, 0) < 0)
		die("TX ring send");
}

/* Overruns (ENOBUFS) that ring_next() took from the socket */
static long kick_enobufs;
/* zero-length reads that ring_next() made (system calls of the ring path) */
static long kicks;

/*
 * The frame at the RX head, or, when none waits, the one a zero-length
 * read (which moves the backlog into released frames and continues a
 * dump: poll() moves nothing) put there; NULL when still none.
 */
static struct nl_mmap_hdr *ring_next(int fd, struct nl_ring *rx)
{
	struct nl_mmap_hdr *hdr = nl_ring_next(rx);
	int err;

	if (hdr)
		return hdr;
	err = nl_ring_kick(fd);
	kicks++;
	if (err == -ENOBUFS)
		kick_enobufs++;
	else if (err) {
		errno = -err;
		die("recv of 0 bytes");
	}
	return nl_ring_next(rx);
}

/* One read round: up to BATCH_MAX packets; 0 if nothing was waiting. */
static int nfq_round(struct nfq_state *s)
{
	const unsigned char *data;
	long before = s->done;
	struct nl_mmap_hdr *hdr;
	size_t len;
	ssize_t n;

	if (s->path == NFQ_URING) {
		uring_round(s, BATCH_MAX);
		nfq_flush(s);
		return s->done > before;
	}
	while (s->done - before < BATCH_MAX && s->out.len + 64 * BATCH_MAX < sizeof(s->out.data)) {
		if (s->path == NFQ_MMSG) {
			if (!mmsg_read(s, BATCH_MAX - (s->done - before)))
				break;
			continue;
		}
		if (s->path != NFQ_RING) {
			n = recv(s->fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
			if (n < 0 && errno == EAGAIN)
				break;
			if (n < 0)
				die("recv nfqueue");
			nfq_handle(s, rbuf, n);
			continue;
		}
		hdr = ring_next(s->fd, &s->rx);
		if (!hdr)
			break;
		data = frame_messages(s->fd, hdr, &len);
		nfq_handle(s, data, len);
		frame_release(&s->rx);
	}
	nfq_flush(s);
	return s->done > before;
}

/* NLBENCH_FORWARD: where the generators and the sink run, and the address */
static struct {
	char src[64], dst[64];
	struct in_addr addr;
	int on;
} fwd;

static void forward_setup(void)
{
	const char *spec = getenv("NLBENCH_FORWARD");
	char addr[64];

	if (!spec || !*spec)
		return;
	if (sscanf(spec, "%63s %63s %63s", fwd.src, fwd.dst, addr) != 3 ||
	    inet_pton(AF_INET, addr, &fwd.addr) != 1) {
		fprintf(stderr, "nlbench: NLBENCH_FORWARD must be \"SRC_NETNS DST_NETNS IPV4\"\n");
		exit(2);
	}
	fwd.on = 1;
}

/* Move this thread into the named netns (ip netns add's bind mount). */
static void enter_netns(const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(path);
	close(fd);
}

static void udp_flow(int size, long packets)
{
	struct sockaddr_in dst = {
		.sin_family = AF_INET, .sin_port = htons(UDP_PORT),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	static unsigned char payload[65507];
	int fd, sndbuf = 64 << 20;
	long i;

	/* a name of its own, so that profiles tell generators from the daemon */
	prctl(PR_SET_NAME, "nlb-flow");
	if (fwd.on) {
		enter_netns(fwd.src);
		dst.sin_addr = fwd.addr;
	}

	/* queued packets stay charged to this socket until their verdict */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		die("UDP socket");
	for (i = 0; i < packets; i++) {
		memcpy(payload, &i, sizeof(i));
		if (sendto(fd, payload, size, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
			die("sendto UDP");
	}
	_exit(0);
}

/*
 * The generators are forked by a spawner that the daemon forks before it
 * has any buffer or ring: the daemon itself never forks, so its memory is
 * never made copy-on-write (a fork per drain burst would cost each path in
 * proportion to the memory it maps, not to its work).
 */
struct spawn_cmd {
	long flows, size, packets;
};

static int spawn_req = -1, spawn_done = -1;

static void spawner(int req, int done)
{
	struct spawn_cmd c;
	int status, ok;
	long i;

	prctl(PR_SET_NAME, "nlb-spawn");
	while (read(req, &c, sizeof(c)) == sizeof(c)) {
		for (i = 0; i < c.flows; i++) {
			pid_t pid = fork();

			if (pid < 0)
				die("fork");
			if (pid == 0)
				udp_flow(c.size, c.packets / c.flows + (i < c.packets % c.flows));
		}
		ok = 1;
		for (i = 0; i < c.flows; i++)
			if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
				ok = 0;
		if (write(done, &ok, sizeof(ok)) != sizeof(ok))
			break;
	}
	_exit(0);
}

static void spawner_start(void)
{
	int req[2], done[2];
	pid_t pid;

	if (pipe(req) || pipe(done))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(req[1]);
		close(done[0]);
		spawner(req[0], done[1]);
	}
	close(req[0]);
	close(done[1]);
	spawn_req = req[1];
	spawn_done = done[0];
}

/* flows processes sending packets datagrams of size bytes between them */
static void flows_start(long flows, int size, long packets)
{
	struct spawn_cmd c = { .flows = flows, .size = size, .packets = packets };

	if (write(spawn_req, &c, sizeof(c)) != sizeof(c))
		die("start the traffic generators");
}

static void flows_wait(void)
{
	int ok = 0;

	if (read(spawn_done, &ok, sizeof(ok)) != sizeof(ok) || !ok)
		die("a traffic generator failed");
}

/* queue counters of queue 0: dropped (queue full) + user_dropped */
static long nfq_drops(void)
{
	long q, portid, total, mode, range, dropped = 0, user = 0;
	FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "r");

	if (f) {
		while (fscanf(f, "%ld %ld %ld %ld %ld %ld %ld %*[^\n]", &q, &portid, &total,
			      &mode, &range, &dropped, &user) == 7 && q != 0)
			;
		fclose(f);
	}
	return dropped + user;
}

/* Verdict packets until target are done; false if they stopped coming. */
static int nfq_until(struct nfq_state *s, long target)
{
	uint64_t last = now_ns();

	while (s->done < target) {
		if (nfq_round(s)) {
			last = now_ns();
			continue;
		}
		if (s->path == NFQ_URING ? !uring_wait(s, IDLE_MS) : !nl_ring_wait(s->fd, IDLE_MS))
			if (now_ns() - last > IDLE_MS * 1000000ull)
				return 0;
	}
	return 1;
}

/*
 * RX ring of NFQ_RING_BYTES (or $NLBENCH_RING_KB KiB) whose frames hold one
 * packet of the size with its netlink and nfqueue headers, as a user would
 * size them for the MTU.
 */
#define NFQ_RING_BYTES	(4 << 20)
static void ring_for_packets(struct nl_mmap_req *req, long size)
{
	const char *kb = getenv("NLBENCH_RING_KB");
	long bytes = kb ? arg_long(kb) << 10 : NFQ_RING_BYTES;
	unsigned int frame = 2048;

	while (frame < size + 28 + 512)
		frame *= 2;
	req->nm_frame_size = frame;
	req->nm_block_size = frame > 65536 ? frame : 65536;
	req->nm_block_nr = bytes / req->nm_block_size;
	req->nm_frame_nr = req->nm_block_nr * (req->nm_block_size / frame);
}

/*
 * flood: the generators run while the daemon verdicts; the time is the
 * whole run (the system's packet rate, generators included).
 * drain: bursts of packets are queued first (they wait in the ring or the
 * socket), then the daemon alone is timed verdicting them (its capacity).
 */
static int bench_nfq(int argc, char **argv)
{
	static const struct nl_mmap_req tx_req = {
		.nm_block_size = 1 << 16, .nm_block_nr = 1,
		.nm_frame_size = 1 << 14, .nm_frame_nr = 4,
	};
	struct sockaddr_in sink_addr = {
		.sin_family = AF_INET, .sin_port = htons(UDP_PORT),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct nfq_state s = { .out.len = 0 };
	long size, packets, flows, burst, n;
	uint64_t busy, timed = 0, t0;
	struct cost c0, c1, cost = { 0, 0 };
	struct nl_mmap_req rx_req;
	int drain, sink, ok = 1;

	if (argc != 6)
		usage();
	s.path = arg_nfq_path(argv[0]);
	if (strcmp(argv[1], "each") && strcmp(argv[1], "batch"))
		usage();
	s.batch = !strcmp(argv[1], "batch");
	size = arg_long(argv[2]);
	packets = arg_long(argv[3]);
	flows = arg_long(argv[4]);
	if (strcmp(argv[5], "flood") && strcmp(argv[5], "drain"))
		usage();
	drain = !strcmp(argv[5], "drain");
	if (size < 8 || size > 65507 || !flows || packets < flows)
		usage();

	forward_setup();
	spawner_start();
	/* accepted packets land here, unread: drops past its buffer are cheap */
	if (fwd.on) {
		int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

		if (self < 0)
			die("/proc/self/ns/net");
		enter_netns(fwd.dst);
		sink_addr.sin_addr.s_addr = htonl(INADDR_ANY);
		sink = socket(AF_INET, SOCK_DGRAM, 0);
		if (setns(self, CLONE_NEWNET))
			die("back to the router's netns");
		close(self);
	} else {
		sink = socket(AF_INET, SOCK_DGRAM, 0);
	}
	if (sink < 0 || bind(sink, (struct sockaddr *)&sink_addr, sizeof(sink_addr)))
		die("UDP sink");
	s.fd = nl_socket(NETLINK_NETFILTER);
	if (s.fd < 0)
		die("netlink socket");
	set_rcvbuf(s.fd, 64 << 20);
	nfq_bind(s.fd, packets);
	if (s.path == NFQ_MMSG)
		mmsg_setup(&s, size);
	if (s.path == NFQ_URING)
		uring_setup(&s, size);
	if (s.path == NFQ_RING) {
		ring_for_packets(&rx_req, size);
		errno = -nl_rings_setup(s.fd, &s.rx, &rx_req, &s.tx, &tx_req);
		if (errno)
			die("rings");
	}

	busy = cpu_busy_ns();
	burst = drain ? (size > 16384 ? 250 : 1000) : packets;
	for (n = 0; ok && n < packets; n += burst) {
		if (burst > packets - n)
			burst = packets - n;
		if (drain) {
			flows_start(flows, size, burst);
			flows_wait();
		}
		c0 = cost_now(RUSAGE_SELF);
		t0 = now_ns();
		if (!drain)
			flows_start(flows, size, burst);
		ok = nfq_until(&s, n + burst);
		timed += now_ns() - t0;
		c1 = cost_now(RUSAGE_SELF);
		cost.user_ns += c1.user_ns - c0.user_ns;
		cost.sys_ns += c1.sys_ns - c0.sys_ns;
		if (!drain)
			flows_wait();
	}
	busy = cpu_busy_ns() - busy;
	printf("{\"workload\": \"nfq\", \"traffic\": \"%s\", \"mode\": \"%s\", \"path\": \"%s\", \"verdict\": \"%s\", "
	       "\"size\": %ld, \"flows\": %ld, \"packets\": %ld, \"verdicted\": %ld, \"lost\": %ld, "
	       "\"queue_drops\": %ld, \"guest_ns\": %llu, \"user_ns\": %llu, \"sys_ns\": %llu, "
	       "\"cpu_busy_ns\": %llu, \"ring_frames\": %u}\n",
	       fwd.on ? "forward" : "local", argv[5], argv[0], argv[1], size, flows, packets, s.done, packets - s.done,
	       nfq_drops(), (unsigned long long)timed, (unsigned long long)cost.user_ns,
	       (unsigned long long)cost.sys_ns, (unsigned long long)busy,
	       s.path == NFQ_RING ? rx_req.nm_frame_nr : 0);
	return s.done == packets ? 0 : 1;
}

/* ---- rtnetlink dump ----------------------------------------------------- */

static void dump_request(int fd)
{
	struct {
		struct nlmsghdr nlh;
		struct rtmsg rtm;
	} req = {
		.nlh.nlmsg_len = sizeof(req),
		.nlh.nlmsg_type = RTM_GETROUTE,
		.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		.nlh.nlmsg_seq = 1,
		.rtm.rtm_family = AF_INET,
	};

	if (send(fd, &req, sizeof(req), 0) < 0)
		die("dump request");
}

/* Count the messages of a buffer; 1 once NLMSG_DONE was seen. */
static int count_messages(const unsigned char *data, size_t len, long *messages)
{
	const struct nlmsghdr *nlh = (const void *)data;

	for (; NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
		if (nlh->nlmsg_type == NLMSG_DONE)
			return 1;
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			errno = EPROTO;
			die("dump answered an error");
		}
		(*messages)++;
	}
	return 0;
}

/* Read whatever waits in the RX ring; 1 once NLMSG_DONE was seen */
static int ring_drain(int fd, struct nl_ring *rx, long *messages, int *frames)
{
	const unsigned char *data;
	struct nl_mmap_hdr *hdr;
	int done = 0;
	size_t len;

	while (!done && (hdr = ring_next(fd, rx))) {
		data = frame_messages(fd, hdr, &len);
		done = count_messages(data, len, messages);
		frame_release(rx);
		(*frames)++;
	}
	return done;
}

static const struct nl_mmap_req dump_req = {
	.nm_block_size = 1 << 16, .nm_block_nr = 64,
	.nm_frame_size = 1 << 13, .nm_frame_nr = 64 * 8,
};

static int bench_dump(int argc, char **argv)
{
	struct nl_ring rx;
	long messages = 0;
	uint64_t start, t;
	struct cost c0, c1;
	int ring, done = 0, reads = 0;
	long syscalls = 1;	/* the request */
	ssize_t n;
	int fd;

	if (argc != 1)
		usage();
	ring = arg_ring(argv[0]);
	fd = nl_socket(NETLINK_ROUTE);
	if (fd < 0)
		die("netlink socket");
	if (ring) {
		errno = -nl_ring_setup(fd, &rx, &dump_req);
		if (errno)
			die("RX ring");
	}
	c0 = cost_now(RUSAGE_SELF);
	start = now_ns();
	dump_request(fd);
	while (!done) {
		if (!ring) {
			n = recv(fd, rbuf, sizeof(rbuf), 0);
			if (n < 0)
				die("recv dump");
			done = count_messages(rbuf, n, &messages);
			reads++;
			syscalls++;
			continue;
		}
		kicks = 0;
		done = ring_drain(fd, &rx, &messages, &reads);
		syscalls += kicks + !done;	/* the poll() below */
		if (!done && !nl_ring_wait(fd, IDLE_MS)) {
			errno = ETIMEDOUT;
			die("dump through the ring stalled");
		}
	}
	t = now_ns() - start;
	c1 = cost_now(RUSAGE_SELF);
	printf("{\"workload\": \"dump\", \"path\": \"%s\", \"messages\": %ld, \"reads\": %d, "
	       "\"syscalls\": %ld, \"guest_ns\": %llu, \"user_ns\": %llu, \"sys_ns\": %llu}\n",
	       argv[0], messages, reads, syscalls, (unsigned long long)t,
	       (unsigned long long)(c1.user_ns - c0.user_ns),
	       (unsigned long long)(c1.sys_ns - c0.sys_ns));
	return 0;
}

/* ---- multicast events --------------------------------------------------- */

/* RTM_NEWROUTE 10.200.x.y/32 dev lo for count routes, in sendmsg()s of 64 */
static void add_routes(long count)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int fd = nl_socket(NETLINK_ROUTE), one_index = 1;
	struct msgbuf b = { .len = 0 };
	long i;

	if (fd < 0)
		die("netlink socket");
	for (i = 0; i < count; i++) {
		struct nlmsghdr *nlh = (struct nlmsghdr *)(b.data + b.len);
		struct rtmsg *rtm = NLMSG_DATA(nlh);
		__u32 dst = htonl(0x0ac80000 | (__u32)i);
		struct rtattr *rta;

		memset(nlh, 0, NLMSG_LENGTH(sizeof(*rtm)));
		nlh->nlmsg_len = NLMSG_LENGTH(sizeof(*rtm));
		nlh->nlmsg_type = RTM_NEWROUTE;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
		rtm->rtm_family = AF_INET;
		rtm->rtm_dst_len = 32;
		rtm->rtm_table = RT_TABLE_MAIN;
		rtm->rtm_protocol = RTPROT_STATIC;
		rtm->rtm_scope = RT_SCOPE_LINK;
		rtm->rtm_type = RTN_UNICAST;
		rta = (struct rtattr *)((unsigned char *)nlh + nlh->nlmsg_len);
		rta->rta_type = RTA_DST;
		rta->rta_len = RTA_LENGTH(4);
		memcpy(RTA_DATA(rta), &dst, 4);
		nlh->nlmsg_len += RTA_SPACE(4);
		rta = (struct rtattr *)((unsigned char *)nlh + nlh->nlmsg_len);
		rta->rta_type = RTA_OIF;
		rta->rta_len = RTA_LENGTH(4);
		memcpy(RTA_DATA(rta), &one_index, 4);
		nlh->nlmsg_len += RTA_SPACE(4);
		b.len += NLMSG_ALIGN(nlh->nlmsg_len);
		if ((i + 1) % 64 == 0 || i + 1 == count) {
			if (sendto(fd, b.data, b.len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
				die("RTM_NEWROUTE");
			b.len = 0;
		}
	}
	_exit(0);
}

static int bench_events(int argc, char **argv)
{
	struct sockaddr_nl groups = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_IPV4_ROUTE };
	long memory, count, messages = 0, enobufs = 0;
	struct nl_mmap_req req;
	uint64_t start, t;
	int ring, fd, frames = 0, status, rcvbuf;
	socklen_t optlen = sizeof(rcvbuf);
	struct nl_ring rx;
	pid_t pid;
	ssize_t n;

	if (argc != 3)
		usage();
	ring = arg_ring(argv[0]);
	memory = arg_long(argv[1]);
	count = arg_long(argv[2]);
	if (memory < 65536 || memory % 65536)
		usage();
	fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (fd < 0 || bind(fd, (struct sockaddr *)&groups, sizeof(groups)))
		die("listener");
	/* Equal memory: the ring reader keeps a receive buffer too (its
	 * backlog is charged there), the least the kernel allows; the socket
	 * reader gets MEMORY plus that much.
	 */
	set_rcvbuf(fd, 0);
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &optlen))
		die("SO_RCVBUF");
	if (ring) {
		req = (struct nl_mmap_req){
			.nm_block_size = 65536, .nm_block_nr = memory / 65536,
			.nm_frame_size = 512, .nm_frame_nr = memory / 512,
		};
		errno = -nl_ring_setup(fd, &rx, &req);
		if (errno)
			die("RX ring");
	} else {
		set_rcvbuf(fd, memory + rcvbuf);
	}
	start = now_ns();
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		add_routes(count);
	for (;;) {
		if (ring) {
			int err;
			socklen_t len = sizeof(err);

			kick_enobufs = 0;
			ring_drain(fd, &rx, &messages, &frames);
			/* an overrun is reported as a socket error (POLLERR),
			 * to the zero-length read or here
			 */
			enobufs += kick_enobufs;
			if (!getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) && err == ENOBUFS)
				enobufs++;
		} else {
			n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
			if (n >= 0) {
				count_messages(rbuf, n, &messages);
				continue;
			}
			if (errno == ENOBUFS) {
				enobufs++;
				continue;
			}
			if (errno != EAGAIN)
				die("recv events");
		}
		if (messages >= count || !nl_ring_wait(fd, 1000))
			break;
	}
	t = now_ns() - start;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		die("the route writer failed");
	if (ring) {
		struct nl_mmap_stats st;
		socklen_t len = sizeof(st);

		if (!getsockopt(fd, SOL_NETLINK, NETLINK_RING_STATS, &st, &len))
			enobufs = st.nm_rx_drops;
	}
	printf("{\"workload\": \"events\", \"path\": \"%s\", \"memory\": %ld, \"rcvbuf_min\": %d, "
	       "\"count\": %ld, \"delivered\": %ld, \"lost\": %ld, \"overruns\": %ld, \"guest_ns\": %llu}\n",
	       argv[0], memory + rcvbuf, rcvbuf, count, messages, count - messages, enobufs,
	       (unsigned long long)t);
	return 0;
}

/* ---- the clock: what copies cost, user space and the kernel's ---------- */

/* Guest ns of @packets pread()s of @len bytes from @fd into @dst. */
static uint64_t time_pread(int fd, unsigned char *dst, long len, long packets)
{
	uint64_t start = now_ns();
	long i;

	for (i = 0; i < packets; i++)
		if (pread(fd, dst, len, 0) != len)
			die("pread of the page cache");
	return now_ns() - start;
}

/*
 * memcpy() of SIZE bytes, the ceiling of a copy in user space, and the
 * kernel's copy_to_user() of the same bytes: pread() of SIZE bytes from a
 * memfd's page cache minus pread() of one byte (the system call and the
 * page lookup).  Under QEMU -icount a guest-ns is one instruction, so the
 * ns per byte of each tell how the clock counts a copy (docs/benchmark.md).
 */
static int bench_copy(int argc, char **argv)
{
	static unsigned char src[65536], dst[65536];
	uint64_t start, t, user_copy;
	long size, packets, i;
	int fd;

	if (argc != 2)
		usage();
	size = arg_long(argv[0]);
	packets = arg_long(argv[1]);
	if (size < 1 || size > (long)sizeof(src))
		usage();
	memset(src, 0x5a, sizeof(src));
	start = now_ns();
	for (i = 0; i < packets; i++) {
		memcpy(dst, src, size);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
	}
	t = now_ns() - start;

	fd = memfd_create("nlbench-copy", MFD_CLOEXEC);
	if (fd < 0 || pwrite(fd, src, sizeof(src), 0) != sizeof(src))
		die("memfd");
	time_pread(fd, dst, size, 16);	/* warm */
	user_copy = time_pread(fd, dst, size, packets);
	user_copy -= min_u64(user_copy, time_pread(fd, dst, 1, packets));
	close(fd);
	printf("{\"workload\": \"copy\", \"size\": %ld, \"packets\": %ld, \"guest_ns\": %llu, "
	       "\"copy_to_user_ns\": %llu}\n",
	       size, packets, (unsigned long long)t, (unsigned long long)user_copy);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "nfq"))
		return bench_nfq(argc - 2, argv + 2);
	if (!strcmp(argv[1], "dump"))
		return bench_dump(argc - 2, argv + 2);
	if (!strcmp(argv[1], "events"))
		return bench_events(argc - 2, argv + 2);
	if (!strcmp(argv[1], "copy"))
		return bench_copy(argc - 2, argv + 2);
	usage();
	return 2;
}
