/* fuzz_client.c - libFuzzer target: libvram-client's parsers of what the daemon hands it (the
 * status text that names the socket, a seal's GPU UUID, a reply message) never overrun and
 * only accept what they should. */
#include "../../client/vram_client.c"
#include "../../client/client_cuda.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), sock[64];
	unsigned char uuid[16];
	int fds[2];

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (socket_from_status(text, sock, sizeof(sock)) == 0 && strlen(sock) >= sizeof(sock))
		abort();
	if (seal_uuid(text, uuid) == 0 && !strstr(text, "\"GPU-"))
		abort();
	/* a reply message as it would come off the socket */
	if (size >= 1 && socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0) {
		struct vr_client c = {.fd = fds[0], .buf = malloc(VR_PROTO_REPLY_MAX)};
		struct vr_proto_reply r;

		if (c.buf && send(fds[1], data, size, 0) == (ssize_t)size) {
			int ret = reply(&c, VR_OP_MAP, &r, NULL, 0, NULL);

			/* accepted: the header's lengths add up to the message exactly */
			if (ret == 0 && (uint64_t)r.seal_len + r.msg_len +
						sizeof(uint64_t) * (uint64_t)r.count + sizeof(r) !=
					    size)
				abort();
			if (ret > 0)
				abort();
		}
		free(c.buf);
		close(fds[0]);
		close(fds[1]);
	}
	free(text);
	return 0;
}
