/* SPDX-License-Identifier: MIT */
/*
 * stream.h - byte streams through a ring window (vgpu_ring.h, "Streams"):
 * how a guest's libcuda.so.1 reaches its VM's CUDA worker through the
 * vgpu-stub device. Each stream's first message (DESCRIBE or OPEN) is
 * handed to the worker with one end of a socket pair, exactly as a local
 * process's socket is (cuda_host.c); from then on the mediator only moves
 * bytes: from the stream's TX ring in the window to its end of the pair,
 * and from there to the RX ring, never parsing them (the worker checks
 * every message as it checks a socket's).
 *
 * Everything here runs on the loop thread. The guest writes the window
 * whenever it likes: its indexes are read once per round and checked (a
 * tail more than a ring ahead closes that stream, logged as the guest's
 * mistake), and the bytes are moved as they are, for the worker to check.
 * The socket is non-blocking: a worker that does not read leaves TX
 * bytes in the window, a guest that does not read leaves the RX ring
 * full (STALLED) and the worker's bytes in the socket.
 */
#ifndef VGPU_TRANSPORT_STREAM_H
#define VGPU_TRANSPORT_STREAM_H

#include "ring.h"
#include "vgpu_ring.h"

/* A checked stream descriptor of @rs (vgpu_ring_check_stream()): open or
 * close stream v->index. VGPU_OK; VGPU_BUSY for an index open already;
 * VGPU_NOT_FOUND for closing one that is not; VGPU_NO_MEMORY. */
int vgpu_streams_desc(struct vgpu_ring_server *rs, const struct vgpu_stream_view *v);
/* The guest rang the doorbell: move what its streams have for the host,
 * and resume any that waited for room in RX. */
void vgpu_streams_pump(struct vgpu_ring_server *rs);
/* The window goes (closed, drained or abused): every stream closed, its
 * worker's end sees the connection end. */
void vgpu_streams_close(struct vgpu_ring_server *rs);

#endif
