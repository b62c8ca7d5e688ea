"""A TCP proxy that delays every chunk sent to the server by a fixed time: a stand-in for
the network between a release pipeline and a remote data center (the lab's servers are
all on this machine's loopback). Usage: latency_proxy.py DELAY_MS LISTEN:TARGET ..."""
import asyncio
import sys

DELAY = int(sys.argv[1]) / 1000.0


async def pipe(reader, writer, delay):
    try:
        while data := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def handler(target_port):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except ConnectionError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, server_writer, DELAY),
            pipe(server_reader, client_writer, 0),
        )
    return handle


async def main():
    servers = []
    for pair in sys.argv[2:]:
        listen, target = (int(p) for p in pair.split(":"))
        servers.append(await asyncio.start_server(handler(target), "127.0.0.1", listen))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


asyncio.run(main())
