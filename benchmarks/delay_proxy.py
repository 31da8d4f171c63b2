"""A TCP forwarder on loopback that adds a fixed round-trip time, for the drain
benchmark (this machine's kernel has no netem, so tc cannot delay a veth).

    delay_proxy.py --upstream-port P --rtt-ms D --port-file FILE

Every byte is held D/2 ms on its way to the server and D/2 ms on its way back,
like a network link with that latency and no bandwidth limit: it does not parse
HTTP, so pipelining, keep-alive and any number of connections behave as they
would over a wire. Each client connection gets its own upstream connection.
The listening port (127.0.0.1, chosen by the kernel) is written to FILE once
listening. Stops on SIGTERM/SIGINT. Python standard library only.
"""

import argparse
import asyncio
import os
import signal
import socket


async def pump(reader, writer, delay, close_both):
    """Copies reader to writer, each chunk delivered `delay` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            queue.put_nowait((loop.time() + delay, data))
        queue.put_nowait((0, None))
        await sender
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        close_both()
    finally:
        if not sender.done():
            sender.cancel()
            try:
                await sender
            except (asyncio.CancelledError, ConnectionError, OSError):
                pass


async def handle(client_reader, client_writer, upstream_port, delay):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_writer.close()
        return
    for w in (client_writer, server_writer):
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close_both():
        for w in (client_writer, server_writer):
            w.close()

    try:
        await asyncio.gather(pump(client_reader, server_writer, delay, close_both),
                             pump(server_reader, client_writer, delay, close_both),
                             return_exceptions=True)
    finally:
        close_both()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--rtt-ms", type=float, required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    delay = args.rtt_ms / 2000.0

    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args.upstream_port, delay), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    temporary = args.port_file + ".tmp"
    with open(temporary, "w") as f:
        f.write(f"{port}\n")
    os.replace(temporary, args.port_file)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
